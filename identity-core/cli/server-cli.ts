/**
 * tspire-server: SPIRE's spire-server command line (run, healthcheck and the admin
 * subcommands) over the bundled TypeScript server.
 */
import type { HealthCheckResponse__Output } from '../proto/gen/grpc/health/v1/HealthCheckResponse.js';
import type { ServerConfig } from '../server/server-config.js';
import { DEFAULT_SERVER_SOCKET_PATH, withAdminApi } from '../client/admin-api.js';
import { addAgentCommands } from './agent-commands.js';
import { addBundleCommands } from './bundle-commands.js';
import {
  boolFlag,
  CommandError,
  createProgram,
  errorMessage,
  intValue,
  runProgram,
  type CliIo,
} from './cli-program.js';
import { exitQuietlyWhenStdoutCloses } from './closed-stdout.js';
import { addEntryCommands } from './entry-commands.js';
import { unary } from '../client/grpc-call.js';
import { loadServerConfig, type ServerOverrides } from './hcl-config.js';
import { addLocalAuthorityCommands } from './local-authority-commands.js';
import { runUntilStopped, type RunningService, type SignalSource } from './run-until-signal.js';
import { addTokenCommands } from './token-commands.js';

export type StartServer = (config: ServerConfig) => Promise<RunningService>;

export interface ServerCliOptions extends Partial<CliIo> {
  /** Replaces the real server, for tests of `run`. */
  startServer?: StartServer;
  /** Where SIGINT / SIGTERM come from; the process by default. */
  signals?: SignalSource;
}

const DEFAULT_CONFIG_PATH = 'conf/server/server.conf';

interface RunOptions {
  config: string;
  bindAddress?: string;
  serverPort?: string;
  socketPath?: string;
  trustDomain?: string;
  dataDir?: string;
  logLevel?: string;
  expandEnv?: boolean;
}

async function loadStartServer(): Promise<StartServer> {
  const module = await import('../server/server.js');
  return module.startServer;
}

export function buildServerProgram(io: CliIo, options: ServerCliOptions = {}) {
  const program = createProgram('tspire-server', 'SPIRE-compatible server for spire-drill', io);

  program
    .command('run')
    .description('Runs the server')
    .option('--config <file>', 'Path to a SPIRE config file', DEFAULT_CONFIG_PATH)
    .option('--bindAddress <address>', 'IP address or DNS name of the SPIRE server')
    .option('--serverPort <port>', 'Port number of the SPIRE server')
    .option('--socketPath <path>', 'Path to bind the SPIRE Server API socket to')
    .option('--trustDomain <domain>', 'The trust domain that this server belongs to')
    .option('--dataDir <dir>', 'Directory to store runtime data to')
    .option('--logLevel <level>', "'debug', 'info', 'warn', or 'error'")
    .addOption(boolFlag('expandEnv', 'Expand environment variables in SPIRE config file'))
    .action(async (flags: RunOptions) => {
      const overrides: ServerOverrides = {
        bindAddress: flags.bindAddress,
        serverPort: flags.serverPort === undefined ? undefined : intValue('serverPort', flags.serverPort, 0),
        socketPath: flags.socketPath,
        trustDomain: flags.trustDomain,
        dataDir: flags.dataDir,
        logLevel: flags.logLevel,
      };
      const { config, warnings } = await loadServerConfig(flags.config, {
        overrides,
        expandEnv: flags.expandEnv ?? false,
      });
      for (const warning of warnings) io.stderr.write(`Warning: ${warning}\n`);
      const startServer = options.startServer ?? (await loadStartServer());
      const server = await startServer(config);
      const failure = await runUntilStopped(server, options.signals ?? process);
      if (failure) throw failure;
    });

  program
    .command('healthcheck')
    .description('Determines server health status')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .addOption(boolFlag('shallow', 'Perform a less stringent health check'))
    .addOption(boolFlag('verbose', 'Print verbose information'))
    .action(async (flags: { socketPath: string; shallow?: boolean; verbose?: boolean }) => {
      if (flags.verbose) io.stdout.write('Checking server health...\n');
      let reason: string | undefined;
      try {
        const response = await withAdminApi(flags.socketPath, (api) => {
          const client = api.health();
          return unary<HealthCheckResponse__Output>((done) => client.Check({ service: '' }, done));
        });
        if (response.status !== 'SERVING')
          reason = `server returned status ${JSON.stringify(response.status)}`;
      } catch (error) {
        if (flags.verbose) io.stderr.write(`Failed to check health: ${errorMessage(error)}\n`);
        reason = 'unable to determine health';
      }
      if (reason) throw new CommandError(`server is unhealthy: ${reason}`);
      io.stdout.write('Server is healthy.\n');
    });

  addEntryCommands(program, io);
  addAgentCommands(program, io);
  addTokenCommands(program, io);
  addBundleCommands(program, io);
  addLocalAuthorityCommands(program, io);
  return program;
}

/**
 * Runs one tspire-server invocation and resolves to its exit code. `run` resolves
 * only once the server has stopped after SIGINT or SIGTERM.
 */
export async function main(argv: readonly string[], options: ServerCliOptions = {}): Promise<number> {
  const io: CliIo = { stdout: options.stdout ?? process.stdout, stderr: options.stderr ?? process.stderr };
  if (!options.stdout) exitQuietlyWhenStdoutCloses(process.stdout);
  const program = buildServerProgram(io, options);
  // spire-server prints `run` failures bare and every other command's as "Error: …".
  return runProgram(program, argv, io, (error) =>
    argv[0] === 'run' ? errorMessage(error) : `Error: ${errorMessage(error)}`,
  );
}
