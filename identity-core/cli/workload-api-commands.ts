/**
 * `tspire-agent api fetch x509 | fetch jwt | validate jwt`: a workload's view of the
 * SPIFFE Workload API, printed and written to disk as spire-agent does.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import type { Struct__Output } from '../proto/gen/google/protobuf/Struct.js';
import type { Value__Output } from '../proto/gen/google/protobuf/Value.js';
import type { JWTBundlesResponse__Output } from '../proto/gen/JWTBundlesResponse.js';
import type { JWTSVIDResponse__Output } from '../proto/gen/JWTSVIDResponse.js';
import type { ValidateJWTSVIDResponse__Output } from '../proto/gen/ValidateJWTSVIDResponse.js';
import type { X509SVIDResponse__Output } from '../proto/gen/X509SVIDResponse.js';
import { WorkloadClient, workloadMetadata, type SpiffeWorkloadAPIClient } from '../proto/services.js';
import { boolFlag, CommandError, errorMessage, repeatable, type CliIo } from './cli-program.js';
import { formatGoDuration, parseDuration } from '../config/duration.js';
import { formatGoTime } from './go-format.js';
import { splitDerCertificates, toPem } from '../spiffe/pem.js';
import { parseX509Svid } from '../spiffe/x509-svid.js';
import { deadlineIn, firstMessage, RpcCallError, unary, unixTarget } from '../client/grpc-call.js';

export const DEFAULT_AGENT_SOCKET_PATH = '/tmp/spire-agent/public/api.sock';

const DEFAULT_TIMEOUT = '5s';

export interface ParsedX509Svid {
  spiffeId: string;
  hint: string;
  certificates: X509Certificate[];
  privateKeyDer: Buffer;
  bundle: X509Certificate[];
  federatedBundles: Map<string, X509Certificate[]>;
}

function parseCertificates(der: Buffer): X509Certificate[] {
  return splitDerCertificates(der).map((one) => new X509Certificate(one));
}

/** Parses every SVID of a response, failing as spire-agent does on anything malformed. */
export function parseX509SvidResponse(response: X509SVIDResponse__Output): ParsedX509Svid[] {
  if (response.svids.length === 0) throw new Error('workload response contains no svids');
  const federatedBundles = new Map<string, X509Certificate[]>();
  for (const [trustDomainId, der] of Object.entries(response.federatedBundles)) {
    let certificates: X509Certificate[];
    try {
      certificates = parseCertificates(der);
    } catch (error) {
      throw new Error(
        `failed to parse bundle for federated domain ${JSON.stringify(trustDomainId)}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    if (certificates.length === 0) {
      throw new Error(`no certificates in bundle for federated domain ${JSON.stringify(trustDomainId)}`);
    }
    federatedBundles.set(trustDomainId, certificates);
  }
  return response.svids.map((svid, index) => {
    try {
      const certificates = parseCertificates(svid.x509Svid);
      if (certificates.length === 0) throw new Error('no certificates found');
      try {
        parseX509Svid(certificates.map((one) => one.raw));
      } catch (error) {
        throw new Error(`certificate validation failed: ${errorMessage(error)}`, { cause: error });
      }
      try {
        createPrivateKey({ key: svid.x509SvidKey, format: 'der', type: 'pkcs8' });
      } catch (error) {
        throw new Error(`failed to parse private key: ${errorMessage(error)}`, { cause: error });
      }
      let bundle: X509Certificate[];
      try {
        bundle = parseCertificates(svid.bundle);
      } catch (error) {
        throw new Error(`failed to parse trust bundle: ${errorMessage(error)}`, { cause: error });
      }
      if (bundle.length === 0) throw new Error('no certificates in trust bundle');
      return {
        spiffeId: svid.spiffeId,
        hint: svid.hint,
        certificates,
        privateKeyDer: svid.x509SvidKey,
        bundle,
        federatedBundles,
      };
    } catch (error) {
      throw new Error(
        `failed to parse svid entry ${index} for spiffe id ${JSON.stringify(svid.spiffeId)}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
  });
}

/**
 * The chain must lead, certificate by certificate, to a root of the bundle, with
 * every certificate valid now. Returns why it does not, or undefined.
 */
export function chainProblem(
  chain: X509Certificate[],
  roots: X509Certificate[],
  now = new Date(),
): string | undefined {
  for (const [index, certificate] of chain.entries()) {
    const notBefore = new Date(certificate.validFrom);
    const notAfter = new Date(certificate.validTo);
    if (now < notBefore || now > notAfter) {
      return `x509: certificate #${index} has expired or is not yet valid: current time ${now.toISOString()} is outside ${notBefore.toISOString()} - ${notAfter.toISOString()}`;
    }
    const signedBy = (issuer: X509Certificate) =>
      certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
    if (roots.some(signedBy)) return undefined;
    const next = chain[index + 1];
    if (!next || !signedBy(next)) break;
  }
  return 'x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority';
}

export function formatX509SvidResponse(svids: ParsedX509Svid[], elapsedNanos: bigint): string {
  const out: string[] = [
    `Received ${svids.length} svid${svids.length === 1 ? '' : 's'} after ${formatGoDuration(elapsedNanos)}`,
  ];
  const validity = (prefix: string, certificate: X509Certificate) => [
    `${prefix} Valid After:\t${formatGoTime(new Date(certificate.validFrom))}`,
    `${prefix} Valid Until:\t${formatGoTime(new Date(certificate.validTo))}`,
  ];
  for (const svid of svids) {
    out.push('');
    out.push(`SPIFFE ID:\t\t${svid.spiffeId}`);
    if (svid.hint) out.push(`Hint:\t\t\t${svid.hint}`);
    const [leaf, ...intermediates] = svid.certificates;
    if (leaf) out.push(...validity('SVID', leaf));
    intermediates.forEach((certificate, i) => out.push(...validity(`Intermediate #${i + 1}`, certificate)));
    svid.bundle.forEach((certificate, i) => out.push(...validity(`CA #${i + 1}`, certificate)));
    for (const [trustDomain, bundle] of svid.federatedBundles) {
      bundle.forEach((certificate, i) => out.push(...validity(`[${trustDomain}] CA #${i + 1}`, certificate)));
    }
  }
  out.push('');
  return `${out.join('\n')}\n`;
}

const certificatesPem = (certificates: X509Certificate[]) =>
  certificates.map((certificate) => toPem(certificate.raw)).join('');

/** svid.N.pem, svid.N.key (owner-only) and bundle.N.pem, plus federated_bundle.N.M.pem, as spire-agent writes them. */
export async function writeX509Svids(directory: string, svids: ParsedX509Svid[], io: CliIo): Promise<void> {
  await mkdir(directory, { recursive: true });
  for (const [i, svid] of svids.entries()) {
    const svidPath = join(directory, `svid.${i}.pem`);
    const keyPath = join(directory, `svid.${i}.key`);
    const bundlePath = join(directory, `bundle.${i}.pem`);
    io.stdout.write(`Writing SVID #${i} to file ${svidPath}.\n`);
    await writeFile(svidPath, certificatesPem(svid.certificates), { mode: 0o644 });
    io.stdout.write(`Writing key #${i} to file ${keyPath}.\n`);
    await writeFile(keyPath, toPem(svid.privateKeyDer, 'PRIVATE KEY'), { mode: 0o600 });
    io.stdout.write(`Writing bundle #${i} to file ${bundlePath}.\n`);
    await writeFile(bundlePath, certificatesPem(svid.bundle), { mode: 0o644 });
    const trustDomains = [...svid.federatedBundles.keys()].sort();
    for (const [j, trustDomain] of trustDomains.entries()) {
      const path = join(directory, `federated_bundle.${i}.${j}.pem`);
      io.stdout.write(`Writing federated bundle #${j} for trust domain ${trustDomain} to file ${path}.\n`);
      await writeFile(path, certificatesPem(svid.federatedBundles.get(trustDomain) ?? []), { mode: 0o644 });
    }
  }
}

function valueToJson(value: Value__Output): unknown {
  switch (value.kind) {
    case 'nullValue':
      return null;
    case 'numberValue':
      return value.numberValue;
    case 'stringValue':
      return value.stringValue;
    case 'boolValue':
      return value.boolValue;
    case 'structValue':
      return value.structValue ? structToJson(value.structValue) : {};
    case 'listValue':
      return (value.listValue?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

/** A google.protobuf.Struct as the JSON object it stands for, keys sorted. */
export function structToJson(struct: Struct__Output): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(struct.fields)
      .sort()
      .map((key) => [key, valueToJson(struct.fields[key] as Value__Output)]),
  );
}

interface ConnectionFlags {
  socketPath: string;
  timeout: string;
}

async function withWorkloadApi<T>(
  flags: ConnectionFlags,
  use: (
    client: SpiffeWorkloadAPIClient,
    call: { metadata: grpc.Metadata; deadline: grpc.Deadline },
  ) => Promise<T>,
): Promise<T> {
  const timeout = parseDuration(flags.timeout);
  if (timeout === undefined || timeout < 0) {
    throw new CommandError(`invalid value ${JSON.stringify(flags.timeout)} for flag -timeout: parse error`);
  }
  const client = new WorkloadClient(unixTarget(flags.socketPath), grpc.credentials.createInsecure());
  try {
    // A zero timeout means none, as in spire-agent.
    const deadline = timeout > 0 ? deadlineIn(timeout) : Infinity;
    return await use(client, { metadata: workloadMetadata(), deadline });
  } finally {
    client.close();
  }
}

function connectionOptions(command: Command): Command {
  return command
    .option(
      '--socketPath <path>',
      'Path to the SPIRE Agent API Unix domain socket',
      DEFAULT_AGENT_SOCKET_PATH,
    )
    .option('--timeout <duration>', 'Time to wait for a response', DEFAULT_TIMEOUT);
}

/** `-audience a,b -audience c` → [a, b, c] (spire-agent's comma-separated flag). */
function audiences(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((value) => value.split(',')).filter((value) => value !== '');
}

export function addWorkloadApiCommands(program: Command, io: CliIo): void {
  const api = program.command('api').description('Calls the SPIFFE Workload API');
  const fetch = api.command('fetch').description('Fetches SVIDs and bundles from the Workload API');
  const validate = api.command('validate').description('Validates SVIDs with the Workload API');

  connectionOptions(fetch.command('x509').description('Fetches X509 SVIDs from the Workload API'))
    .option('--write <dir>', 'Write SVID data to the specified path (optional)')
    .addOption(boolFlag('silent', 'Suppress stdout'))
    .action(async (flags: ConnectionFlags & { write?: string; silent?: boolean }) => {
      const started = process.hrtime.bigint();
      const response = await withWorkloadApi(flags, (client, call) =>
        firstMessage<X509SVIDResponse__Output>(
          client.FetchX509SVID({}, call.metadata, { deadline: call.deadline }),
        ),
      );
      const elapsed = process.hrtime.bigint() - started;
      const svids = parseX509SvidResponse(response);
      for (const svid of svids) {
        const problem = chainProblem(svid.certificates, svid.bundle);
        if (problem)
          throw new Error(
            `${JSON.stringify(svid.spiffeId)} SVID failed verification against bundle: ${problem}`,
          );
      }
      if (!flags.silent) io.stdout.write(formatX509SvidResponse(svids, elapsed));
      if (flags.write !== undefined) await writeX509Svids(flags.write, svids, io);
    });

  connectionOptions(fetch.command('jwt').description('Fetches a JWT SVID from the Workload API'))
    .addOption(repeatable('--audience <list>', 'comma separated list of audience values'))
    .option('--spiffeID <id>', 'SPIFFE ID subject (optional)')
    .action(async (flags: ConnectionFlags & { audience?: string[]; spiffeID?: string }) => {
      const audience = audiences(flags.audience);
      if (audience.length === 0) throw new CommandError('audience must be specified');
      const { svids, bundles } = await withWorkloadApi(flags, async (client, call) => {
        let bundles: JWTBundlesResponse__Output;
        try {
          bundles = await firstMessage<JWTBundlesResponse__Output>(
            client.FetchJWTBundles({}, call.metadata, { deadline: call.deadline }),
          );
        } catch (error) {
          throw new Error(`failed to receive JWT bundles: ${errorMessage(error)}`, { cause: error });
        }
        const request = { audience, spiffeId: flags.spiffeID ?? '' };
        const svids = await unary<JWTSVIDResponse__Output>((done) =>
          client.FetchJWTSVID(request, call.metadata, { deadline: call.deadline }, done),
        );
        return { svids, bundles };
      });
      for (const svid of svids.svids) {
        io.stdout.write(`token(${svid.spiffeId}):\n\t${svid.svid}\n`);
        if (svid.hint) io.stdout.write(`hint(${svid.spiffeId}):\n\t${svid.hint}\n`);
      }
      for (const [trustDomainId, jwks] of Object.entries(bundles.bundles)) {
        io.stdout.write(`bundle(${trustDomainId}):\n\t${jwks.toString('utf8')}\n`);
      }
    });

  connectionOptions(validate.command('jwt').description('Validates a JWT SVID'))
    .option('--audience <audience>', 'expected audience value')
    .option('--svid <token>', 'JWT SVID')
    .action(async (flags: ConnectionFlags & { audience?: string; svid?: string }) => {
      const { audience, svid } = flags;
      if (!audience) throw new CommandError('audience must be specified');
      if (!svid) throw new CommandError('svid must be specified');
      const response = await withWorkloadApi(flags, async (client, call) => {
        try {
          return await unary<ValidateJWTSVIDResponse__Output>((done) =>
            client.ValidateJWTSVID({ audience, svid }, call.metadata, { deadline: call.deadline }, done),
          );
        } catch (error) {
          if (error instanceof RpcCallError && error.code === grpc.status.INVALID_ARGUMENT) {
            throw new Error(`SVID is not valid: ${error.details}`, { cause: error });
          }
          throw new Error(`unable to validate JWT SVID: ${errorMessage(error)}`, { cause: error });
        }
      });
      const claims = response.claims ? structToJson(response.claims) : {};
      io.stdout.write(
        `SVID is valid.\nSPIFFE ID : ${response.spiffeId}\nClaims    : ${JSON.stringify(claims)}\n`,
      );
    });
}
