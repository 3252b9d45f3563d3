/** `tspire-server bundle show`: the server's trust bundle as PEM or as a SPIFFE bundle (JWKS). */
import { createPublicKey, X509Certificate, type JsonWebKey } from 'node:crypto';
import type { Command } from 'commander';
import type { Bundle__Output } from '../proto/gen/spire/api/types/Bundle.js';
import { DEFAULT_SERVER_SOCKET_PATH, withAdminApi } from './admin-api.js';
import { CommandError, type CliIo } from './cli-program.js';
import { toPem } from './go-format.js';
import { unary } from './grpc-call.js';

export type BundleFormat = 'pem' | 'spiffe';

export function bundleFormat(text: string | undefined): BundleFormat {
  const format = (text || 'pem').toLowerCase();
  if (format !== 'pem' && format !== 'spiffe')
    throw new CommandError(`invalid format: ${JSON.stringify(format)}`);
  return format;
}

/** Each X.509 authority as a PEM CERTIFICATE block. */
export function bundlePem(bundle: Bundle__Output): string {
  return bundle.x509Authorities.map((authority) => toPem('CERTIFICATE', authority.asn1)).join('');
}

/** Key members in the order go-jose writes them, so output compares line for line with spire-server's. */
function jwk(use: string, key: JsonWebKey, extra: { kid?: string; x5c?: string[] }): Record<string, unknown> {
  const ordered: Record<string, unknown> = { use, kty: key.kty };
  if (extra.kid !== undefined) ordered['kid'] = extra.kid;
  for (const member of ['crv', 'x', 'y', 'n', 'e'] as const) {
    if (key[member] !== undefined) ordered[member] = key[member];
  }
  if (extra.x5c) ordered['x5c'] = extra.x5c;
  return ordered;
}

/** The SPIFFE bundle format (a JWKS with spiffe_sequence and spiffe_refresh_hint), indented by four spaces. */
export function bundleSpiffeJson(bundle: Bundle__Output): string {
  const keys = [
    ...bundle.x509Authorities.map((authority) => {
      const key = new X509Certificate(authority.asn1).publicKey.export({ format: 'jwk' });
      return jwk('x509-svid', key, { x5c: [authority.asn1.toString('base64')] });
    }),
    ...bundle.jwtAuthorities.map((authority) => {
      const key = createPublicKey({ key: authority.publicKey, format: 'der', type: 'spki' }).export({
        format: 'jwk',
      });
      return jwk('jwt-svid', key, { kid: authority.keyId });
    }),
  ];
  const document: Record<string, unknown> = { keys };
  if (bundle.sequenceNumber > 0) document['spiffe_sequence'] = bundle.sequenceNumber;
  if (bundle.refreshHint > 0) document['spiffe_refresh_hint'] = bundle.refreshHint;
  return `${JSON.stringify(document, null, 4)}\n`;
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
      io.stdout.write(format === 'pem' ? bundlePem(bundle) : bundleSpiffeJson(bundle));
    });
}
