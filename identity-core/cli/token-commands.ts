/** `tspire-server token generate`: a join token for an agent's first attestation. */
import type { Command } from 'commander';
import type { JoinToken__Output } from '../proto/gen/spire/api/types/JoinToken.js';
import { DEFAULT_SERVER_SOCKET_PATH, withAdminApi } from '../client/admin-api.js';
import { int32Value, type CliIo } from './cli-program.js';
import { unary } from '../client/grpc-call.js';
import { spiffeIdArg } from './spiffe-id-arg.js';

export function addTokenCommands(program: Command, io: CliIo): void {
  program
    .command('token')
    .description('Manages join tokens')
    .command('generate')
    .description('Generates a join token')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .option('--spiffeID <id>', 'Additional SPIFFE ID to assign the token owner (optional)')
    .option('--ttl <seconds>', 'Token TTL in seconds', '600')
    .action(async (options: { socketPath: string; spiffeID?: string; ttl: string }) => {
      const agentId = options.spiffeID ? spiffeIdArg(options.spiffeID) : null;
      const ttl = int32Value('ttl', options.ttl, 600);
      const token = await withAdminApi(options.socketPath, (api) => {
        const client = api.agent();
        return unary<JoinToken__Output>((done) => client.CreateJoinToken({ ttl, agentId }, done));
      });
      io.stdout.write(`Token: ${token.value}\n`);
      if (!options.spiffeID) io.stdout.write('Warning: Missing SPIFFE ID.\n');
    });
}
