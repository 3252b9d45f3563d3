import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { packageRoot } from '../deployment/host/package-root.js';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../workflows/search-attributes.js';

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** The dev server stopped before it answered; `reason` is what its log said, when it said why. */
export class DevServerExited extends Error {
  constructor(
    readonly reason: string | undefined,
    readonly logFile: string,
  ) {
    super(`temporal dev server exited${reason ? `: ${reason}` : ''} (see ${logFile})`);
    this.name = 'DevServerExited';
  }
}

/** The last error this run wrote to the log (`level=ERROR msg="…"`), such as a port in use. */
function exitReason(logFile: string, from: number): string | undefined {
  const written = readFileSync(logFile).subarray(from).toString('utf8');
  const errors = [...written.matchAll(/level=ERROR msg="((?:[^"\\]|\\.)*)"/g)];
  return errors.at(-1)?.[1]?.replace(/\\"/g, '"');
}

/** The SDK gives a dev server 5 s; on two busy cores a cold start can take longer. */
const READY_TIMEOUT_MS = 90_000;

export function temporalBinary(): string {
  return join(packageRoot(), 'tools', 'bin', 'temporal');
}

/**
 * Starts the pinned `temporal server start-dev` with a database file (history survives restarts), the
 * Web UI, and the project's search attributes registered; resolves once it answers gRPC.
 */
export async function startDevServer(options: {
  port: number;
  uiPort: number;
  dbFile: string;
  logFile: string;
  headless?: boolean;
}): Promise<DevServer> {
  const binary = temporalBinary();
  if (!existsSync(binary))
    throw new Error(
      `${binary} is missing: run \`npm run tools\` (tools/install.sh) to build the Temporal CLI`,
    );
  mkdirSync(join(options.dbFile, '..'), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--ui-port',
    String(options.uiPort),
    '--db-filename',
    options.dbFile,
    '--namespace',
    'default',
    '--log-level',
    'warn',
    ...SEARCH_ATTRIBUTE_REGISTRATIONS.flatMap((a) => ['--search-attribute', a]),
    ...(options.headless ? ['--headless'] : []),
  ];
  const logStart = existsSync(options.logFile) ? statSync(options.logFile).size : 0;
  const out = openSync(options.logFile, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${options.port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null)
      throw new DevServerExited(exitReason(options.logFile, logStart), options.logFile);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      await connection.healthService.check({});
      await connection.close();
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `temporal dev server not ready after ${READY_TIMEOUT_MS / 1000} s: ${(error as Error).message}`,
          { cause: error },
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return {
    address,
    uiUrl: `http://127.0.0.1:${options.uiPort}`,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
