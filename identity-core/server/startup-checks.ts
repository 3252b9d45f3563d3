/**
 * What the server checks of its configuration against this host before it touches the datastore: a
 * failed start must not leave a new CA or JWT key behind in the bundle, so every path and port that
 * could still fail later is tried first, each failure naming its config key.
 */
import { mkdir, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { unixSocketPathTooLong } from '../transport/unix-socket-path.js';
import type { ServerConfig } from './server-config.js';

export class StartupCheckError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'StartupCheckError';
  }
}

/** A directory that exists or can be made; the reason otherwise. */
async function directoryProblem(path: string): Promise<string | undefined> {
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isDirectory()) return `${path} exists and is not a directory`;
  if (existing) return undefined;
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
    return undefined;
  } catch (error) {
    return `cannot create ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  }
}

/** keys_path names a file, as in SPIRE: its directory must be there or creatable. */
async function keysFileProblem(path: string): Promise<string | undefined> {
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isFile())
    return `${path} exists and is not a file (keys_path names the keys file)`;
  return directoryProblem(dirname(path));
}

async function unixSocketPathProblem(path: string): Promise<string | undefined> {
  const tooLong = unixSocketPathTooLong(path);
  if (tooLong) return tooLong;
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isSocket()) return `${path} exists and is not a socket`;
  return directoryProblem(dirname(path));
}

/** Binds and releases the port; port 0 always succeeds. */
function portProblem(host: string, port: number): Promise<string | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      resolve(`cannot listen on ${host}:${port}: ${error.code ?? error.message}`),
    );
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

export async function checkServerStartup(config: ServerConfig): Promise<void> {
  const { server, plugins, telemetry, healthChecks } = config;
  // One at a time: two keys naming the same port must not fail each other's probe.
  const checks: [string, () => Promise<string | undefined>][] = [
    ['server.data_dir', () => directoryProblem(server.dataDir)],
    ['server.socket_path', () => unixSocketPathProblem(server.socketPath)],
    ['server.bind_port', () => portProblem(server.bindAddress, server.bindPort)],
  ];
  if (plugins.keyManager.name === 'disk') {
    const keysPath = plugins.keyManager.keysPath;
    checks.push(['plugins.KeyManager.disk.keys_path', () => keysFileProblem(keysPath)]);
  }
  const prometheus = telemetry.prometheus;
  if (prometheus)
    checks.push(['telemetry.Prometheus.port', () => portProblem(prometheus.host, prometheus.port)]);
  if (healthChecks.listenerEnabled)
    checks.push([
      'health_checks.bind_port',
      () => portProblem(healthChecks.bindAddress, healthChecks.bindPort),
    ]);
  const problems: string[] = [];
  for (const [key, check] of checks) {
    const problem = await check();
    if (problem) problems.push(`${key}: ${problem}`);
  }
  if (problems.length > 0) throw new StartupCheckError(problems);
}
