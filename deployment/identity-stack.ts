import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { renderAgentConfig, renderServerConfig, type DatabaseChoice } from './identity-configs.js';
import { startProcess, type ManagedProcess } from './managed-process.js';
import { binPath } from './package-root.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface IdentityStackOptions {
  /** Directory for configs, sockets, data and logs; keep it short (Unix socket paths are limited to 107 bytes). */
  runDir: string;
  trustDomain?: string;
  /** Defaults to the embedded PGlite datastore in the run directory. */
  database?: DatabaseChoice;
  caTtl?: string;
  x509SvidTtl?: string;
  jwtSvidTtl?: string;
  syncInterval?: string;
  logLevel?: string;
  /** How often the server checks its CA rotation thresholds (SPIRE: 10 s). */
  caRotationCheckInterval?: string;
  /** Loopback ports for /metrics and the health listener of each process; off when absent. */
  telemetry?: {
    serverMetricsPort: number;
    serverHealthPort: number;
    agentMetricsPort: number;
    agentHealthPort: number;
  };
}

/** Runs a command to completion; never throws on a non-zero exit, which callers check. */
export function runCommand(command: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms\n${describe()}`);
}

/**
 * One trust domain on this host: a tspire-server and (once `startAgent` is called) a tspire-agent,
 * each a detached process configured by an HCL file in the run directory, driven through their CLIs.
 */
export class IdentityStack {
  readonly trustDomain: string;
  readonly serverSocket: string;
  readonly agentSocket: string;
  readonly serverConfigPath: string;
  readonly agentConfigPath: string;
  readonly bundlePath: string;
  server: ManagedProcess | undefined;
  agent: ManagedProcess | undefined;

  private constructor(
    readonly options: Required<
      Omit<IdentityStackOptions, 'database' | 'caRotationCheckInterval' | 'telemetry'>
    > &
      Pick<IdentityStackOptions, 'caRotationCheckInterval' | 'telemetry'> & { database: DatabaseChoice },
    readonly serverPort: number,
  ) {
    const dir = options.runDir;
    this.trustDomain = options.trustDomain;
    this.serverSocket = join(dir, 'server.sock');
    this.agentSocket = join(dir, 'agent.sock');
    this.serverConfigPath = join(dir, 'server.conf');
    this.agentConfigPath = join(dir, 'agent.conf');
    this.bundlePath = join(dir, 'bootstrap-bundle.pem');
  }

  static async create(options: IdentityStackOptions): Promise<IdentityStack> {
    mkdirSync(options.runDir, { recursive: true });
    const stack = new IdentityStack(
      {
        runDir: options.runDir,
        trustDomain: options.trustDomain ?? 'example.org',
        database: options.database ?? { type: 'pglite', directory: join(options.runDir, 'datastore') },
        caTtl: options.caTtl ?? '24h',
        x509SvidTtl: options.x509SvidTtl ?? '1h',
        jwtSvidTtl: options.jwtSvidTtl ?? '5m',
        syncInterval: options.syncInterval ?? '5s',
        logLevel: options.logLevel ?? 'INFO',
        caRotationCheckInterval: options.caRotationCheckInterval,
        telemetry: options.telemetry,
      },
      await freePort(),
    );
    writeFileSync(
      stack.serverConfigPath,
      renderServerConfig({
        trustDomain: stack.trustDomain,
        bindPort: stack.serverPort,
        socketPath: stack.serverSocket,
        dataDir: join(options.runDir, 'server-data'),
        database: stack.options.database,
        caTtl: stack.options.caTtl,
        x509SvidTtl: stack.options.x509SvidTtl,
        jwtSvidTtl: stack.options.jwtSvidTtl,
        logLevel: stack.options.logLevel,
        ...(options.caRotationCheckInterval
          ? { caRotationCheckInterval: options.caRotationCheckInterval }
          : {}),
        ...(options.telemetry
          ? {
              metricsPort: options.telemetry.serverMetricsPort,
              healthPort: options.telemetry.serverHealthPort,
            }
          : {}),
      }),
    );
    writeFileSync(
      stack.agentConfigPath,
      renderAgentConfig({
        trustDomain: stack.trustDomain,
        serverPort: stack.serverPort,
        socketPath: stack.agentSocket,
        dataDir: join(options.runDir, 'agent-data'),
        trustBundlePath: stack.bundlePath,
        syncInterval: stack.options.syncInterval,
        logLevel: stack.options.logLevel,
        ...(options.telemetry
          ? { metricsPort: options.telemetry.agentMetricsPort, healthPort: options.telemetry.agentHealthPort }
          : {}),
      }),
    );
    return stack;
  }

  serverCli(args: string[]): Promise<CliResult> {
    return runCommand(process.execPath, [
      binPath('tspire-server'),
      ...args,
      '-socketPath',
      this.serverSocket,
    ]);
  }

  agentCli(args: string[]): Promise<CliResult> {
    return runCommand(process.execPath, [binPath('tspire-agent'), ...args, '-socketPath', this.agentSocket]);
  }

  async startServer(timeoutMs = 60_000): Promise<void> {
    this.server = startProcess(this.options.runDir, 'tspire-server', process.execPath, [
      binPath('tspire-server'),
      'run',
      '-config',
      this.serverConfigPath,
    ]);
    const server = this.server;
    await waitFor(
      'tspire-server',
      async () => {
        if (!server.isRunning()) throw new Error(`tspire-server exited during start:\n${server.log()}`);
        return existsSync(this.serverSocket) && (await this.serverCli(['healthcheck'])).code === 0;
      },
      timeoutMs,
      () => server.log(),
    );
  }

  /** Writes the server's current bundle for the agent to bootstrap from. */
  async writeBootstrapBundle(): Promise<void> {
    const result = await this.serverCli(['bundle', 'show', '-format', 'pem']);
    if (result.code !== 0) throw new Error(`bundle show failed: ${result.stderr}`);
    writeFileSync(this.bundlePath, result.stdout);
  }

  async generateToken(spiffeId: string): Promise<string> {
    const result = await this.serverCli(['token', 'generate', '-spiffeID', spiffeId]);
    const token = /Token: (\S+)/.exec(result.stdout)?.[1];
    if (result.code !== 0 || !token)
      throw new Error(`token generate failed: ${result.stderr || result.stdout}`);
    return token;
  }

  async startAgent(joinToken: string | undefined, timeoutMs = 60_000): Promise<void> {
    if (!existsSync(this.bundlePath)) await this.writeBootstrapBundle();
    const args = [binPath('tspire-agent'), 'run', '-config', this.agentConfigPath];
    if (joinToken) args.push('-joinToken', joinToken);
    this.agent = startProcess(this.options.runDir, 'tspire-agent', process.execPath, args);
    const agent = this.agent;
    await waitFor(
      'tspire-agent',
      async () => {
        if (!agent.isRunning()) throw new Error(`tspire-agent exited during start:\n${agent.log()}`);
        return existsSync(this.agentSocket);
      },
      timeoutMs,
      () => agent.log(),
    );
  }

  async stop(): Promise<void> {
    await this.agent?.stop();
    await this.server?.stop();
  }
}
