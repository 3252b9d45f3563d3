import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { CommanderError, type Command } from 'commander';
import { deploymentsHome } from '../deployment/deployment.js';
import { freePort } from '../deployment/host/free-port.js';
import { startDevServer, type DevServer } from '../workers/dev-server.js';
import { temporalSettings, type TemporalSettings } from '../workers/temporal-settings.js';
import { createWorker } from '../workers/worker.js';
import { beforeLeaving } from './interrupts.js';

/** A failure the CLI reports in one line (no stack) and turns into its exit code. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const out = (text: string) => process.stdout.write(`${text}\n`);
export const err = (text: string) => process.stderr.write(`${text}\n`);

/** An error's message, first line only: what an operator reads instead of a stack. */
export const oneLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim() || 'unknown error';

/**
 * Says why a command ended, in one line on stderr (never a stack trace), and returns its exit code:
 * 2 for bad input (usage errors included), the failure's own code, else 1.
 */
export function failureExit(error: unknown): number {
  // Commander has already written its one line through `usageErrors`.
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  if (error instanceof CliFailure) {
    if (error.message) err(`spire-drill: ${error.message}`);
    return error.exitCode;
  }
  err(`spire-drill: ${oneLine(error)}`);
  return 1;
}

/** Commander's usage errors as one `spire-drill:` line pointing at --help, instead of the whole help. */
export function usageErrors(program: Command): Command {
  return program.exitOverride().configureOutput({
    outputError: (text, write) =>
      write(`spire-drill: ${text.trim().replace(/^error: /, '')} (--help shows the usage)\n`),
  });
}

/** A scenario, suite or topology file refused: one problem on one line, several as a list. */
export function invalidFile(error: Error & { issues: string[] }): CliFailure {
  return new CliFailure(
    error.issues.length === 1 ? error.message.replace(/:\n\s+- /, ': ') : error.message,
    2,
  );
}

/** A workflow that does not exist is bad input (exit 2); anything else from Temporal is a failure. */
export function notFoundAsBadInput(what: string): (error: unknown) => never {
  return (error) => {
    if (error instanceof WorkflowNotFoundError) throw new CliFailure(`no ${what}`, 2);
    throw new CliFailure(`${what}: ${oneLine(error)}`);
  };
}

export async function connect(settings: TemporalSettings): Promise<Client> {
  try {
    const connection = await Connection.connect({ address: settings.address, connectTimeout: 5000 });
    return new Client({ connection, namespace: settings.namespace });
  } catch (error) {
    throw new CliFailure(
      `cannot reach Temporal at ${settings.address} (${(error as Error).message}): run \`spire-drill dev\`, or set TEMPORAL_ADDRESS`,
    );
  }
}

/** A dev server and an in-process worker for commands that need both and find no Temporal running. */
export async function localTemporal(options: { keepServer?: boolean }): Promise<{
  settings: TemporalSettings;
  stop: () => Promise<void>;
}> {
  const settings = temporalSettings();
  let server: DevServer | undefined;
  if (!settings.external) {
    const home = deploymentsHome();
    mkdirSync(home, { recursive: true });
    const port = await freePort();
    server = await startDevServer({
      port,
      uiPort: await freePort(),
      dbFile: join(home, '..', 'temporal-demo.db'),
      logFile: join(home, '..', 'temporal-demo.log'),
    });
    settings.address = server.address;
    settings.uiUrl = server.uiUrl;
  }
  // A dev server is a child process: one left behind would hold its database file for the next command.
  const started = server;
  const forget = beforeLeaving(() => {
    if (started && !options.keepServer) started.process.kill('SIGTERM');
  });
  const { worker, connection } = await createWorker({
    address: settings.address,
    namespace: settings.namespace,
  });
  const running = worker.run();
  return {
    settings,
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      if (!options.keepServer) await server?.stop();
      forget();
    },
  };
}
