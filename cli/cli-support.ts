import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
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
