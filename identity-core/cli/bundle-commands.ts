/** `tspire-server bundle show`: the server's trust bundle as PEM or as a SPIFFE bundle (JWKS). */
import type { Command } from 'commander';
import type { Bundle__Output } from '../proto/gen/spire/api/types/Bundle.js';
import { DEFAULT_SERVER_SOCKET_PATH, withAdminApi } from '../client/admin-api.js';
import { CommandError, type CliIo } from './cli-program.js';
import { bundleFromProto } from '../proto/convert.js';
import { toSpiffeBundleJson, x509AuthoritiesPem } from '../spiffe/trust-bundle.js';
import { unary } from '../client/grpc-call.js';

export type BundleFormat = 'pem' | 'spiffe';

export function bundleFormat(text: string | undefined): BundleFormat {
  const format = (text || 'pem').toLowerCase();
  if (format !== 'pem' && format !== 'spiffe')
    throw new CommandError(`invalid format: ${JSON.stringify(format)}`);
  return format;
}

export function addBundleCommands(program: Command, io: CliIo): void {
  program
    .command('bundle')
    .description('Manages the trust bundle')
    .command('show')
    .description('Prints server CA bundle to stdout')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .option('--format <format>', 'The format to show the bundle. Either "pem" or "spiffe".', 'pem')
    .action(async (options: { socketPath: string; format: string }) => {
      const format = bundleFormat(options.format);
      const bundle = await withAdminApi(options.socketPath, (api) => {
        const client = api.bundle();
        return unary<Bundle__Output>((done) => client.GetBundle({}, done));
      });
      io.stdout.write(
        format === 'pem'
          ? x509AuthoritiesPem(bundleFromProto(bundle))
          : `${toSpiffeBundleJson(bundleFromProto(bundle))}\n`,
      );
    });
}
