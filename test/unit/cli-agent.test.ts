import 'reflect-metadata';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../identity-core/agent/agent-config.js';
import { main } from '../../identity-core/cli/agent-cli.js';
import { splitDerCertificates } from '../../identity-core/spiffe/pem.js';
import {
  healthService,
  workloadService,
  type HealthHandlers,
  type SpiffeWorkloadAPIHandlers,
} from '../../identity-core/proto/services.js';
import { UnixGrpcFake } from '../support/unix-grpc-fake.js';

function capture() {
  const chunks: string[] = [];
  return { write: (chunk: string) => chunks.push(chunk), text: () => chunks.join('') };
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

interface Issued {
  der: Buffer;
  keys: webcrypto.CryptoKeyPair;
  name: string;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function issue(name: string, issuer: Issued | undefined, ca: boolean, uri?: string): Promise<Issued> {
  const keys = await keyPair();
  // Key usages as the X509-SVID standard requires them, which spire-agent checks on what it fetches.
  const usages = ca
    ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
    : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(ca, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
  ];
  if (uri) extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: String(Math.floor(Math.random() * 1e6) + 1),
    subject: name,
    issuer: issuer?.name ?? name,
    notBefore: new Date('2025-01-01T00:00:00Z'),
    notAfter: new Date('2035-06-01T12:30:00Z'),
    signingKey: (issuer?.keys ?? keys).privateKey as unknown as CryptoKeyLike,
    publicKey: keys.publicKey as unknown as CryptoKeyLike,
    signingAlgorithm: ALGORITHM,
    extensions,
  });
  return { der: Buffer.from(certificate.rawData), keys, name };
}

type CryptoKeyLike = x509.X509CertificateCreateWithKeyParams['signingKey'];

/** A stand-in for tspire-agent's Workload API socket (which also answers health checks). */
class FakeWorkloadApi extends UnixGrpcFake {
  readonly requests: { method: string; request: unknown; header: unknown }[] = [];
  x509Response: unknown;

  constructor() {
    super();
    const seen = (method: string, call: { request: unknown; metadata: grpc.Metadata }) => {
      const header = call.metadata.get('workload.spiffe.io')[0];
      this.requests.push({ method, request: call.request, header });
      return header === 'true';
    };
    const missingHeader = {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'security header missing from request',
    };
    const handlers: Partial<SpiffeWorkloadAPIHandlers> = {
      FetchX509SVID: (call) => {
        if (!seen('FetchX509SVID', call)) return call.destroy(Object.assign(new Error('x'), missingHeader));
        call.write(this.x509Response as never);
      },
      FetchJWTBundles: (call) => {
        seen('FetchJWTBundles', call);
        call.write({ bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } });
      },
      FetchJWTSVID: (call, done) => {
        seen('FetchJWTSVID', call);
        done(null, {
          svids: [{ spiffeId: 'spiffe://example.org/web', svid: 'aaa.bbb.ccc', hint: 'internal' }],
        });
      },
      ValidateJWTSVID: (call, done) => {
        seen('ValidateJWTSVID', call);
        if (call.request.svid !== 'good.token.sig') {
          done({ code: grpc.status.INVALID_ARGUMENT, details: 'token has expired' });
          return;
        }
        done(null, {
          spiffeId: 'spiffe://example.org/web',
          claims: {
            fields: {
              sub: { stringValue: 'spiffe://example.org/web' },
              aud: { listValue: { values: [{ stringValue: 'db' }] } },
              exp: { numberValue: 1767225600 },
            },
          },
        });
      },
    };
    const health: Partial<HealthHandlers> = { Check: (_call, done) => done(null, { status: 'SERVING' }) };
    this.server.addService(workloadService, handlers as grpc.UntypedServiceImplementation);
    this.server.addService(healthService, health as grpc.UntypedServiceImplementation);
  }
}

describe('tspire-agent api against a fake Workload API', () => {
  let dir: string;
  let socketPath: string;
  let fake: FakeWorkloadApi;
  let root: Issued;
  let intermediate: Issued;
  let leaf: Issued;
  let otherRoot: Issued;
  let leafKey: Buffer;

  beforeAll(async () => {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    dir = await mkdtemp(join(tmpdir(), 'tspire-agent-cli-'));
    socketPath = join(dir, 'api.sock');
    root = await issue('CN=root', undefined, true);
    intermediate = await issue('CN=intermediate', root, true);
    leaf = await issue('CN=web', intermediate, false, 'spiffe://example.org/web');
    otherRoot = await issue('CN=other', undefined, true);
    leafKey = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leaf.keys.privateKey));
    fake = new FakeWorkloadApi();
    await fake.listen(socketPath);
  });

  afterAll(async () => {
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    fake.requests.length = 0;
    fake.x509Response = {
      svids: [
        {
          spiffeId: 'spiffe://example.org/web',
          x509Svid: Buffer.concat([leaf.der, intermediate.der]),
          x509SvidKey: leafKey,
          bundle: root.der,
          hint: '',
        },
      ],
      crl: [],
      federatedBundles: {},
    };
  });

  async function run(...argv: string[]) {
    const stdout = capture();
    const stderr = capture();
    const code = await main([...argv, '-socketPath', socketPath], { stdout, stderr });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  }

  it('fetch x509 prints the SVID like spire-agent, after sending the security header', async () => {
    const result = await run('api', 'fetch', 'x509');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(fake.requests[0]).toMatchObject({ method: 'FetchX509SVID', header: 'true' });
    const [first, ...rest] = result.stdout.split('\n');
    expect(first).toMatch(/^Received 1 svid after \d+(\.\d+)?(ns|µs|ms|s)$/);
    expect(rest.join('\n')).toBe(
      [
        '',
        'SPIFFE ID:\t\tspiffe://example.org/web',
        'SVID Valid After:\t2025-01-01 00:00:00 +0000 UTC',
        'SVID Valid Until:\t2035-06-01 12:30:00 +0000 UTC',
        'Intermediate #1 Valid After:\t2025-01-01 00:00:00 +0000 UTC',
        'Intermediate #1 Valid Until:\t2035-06-01 12:30:00 +0000 UTC',
        'CA #1 Valid After:\t2025-01-01 00:00:00 +0000 UTC',
        'CA #1 Valid Until:\t2035-06-01 12:30:00 +0000 UTC',
        '',
        '',
      ].join('\n'),
    );
  });

  it('fetch x509 -write writes the chain, the key (owner-only) and the bundle', async () => {
    const out = join(dir, 'out');
    const result = await run('api', 'fetch', 'x509', '-silent', '-write', out);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      `Writing SVID #0 to file ${out}/svid.0.pem.\nWriting key #0 to file ${out}/svid.0.key.\nWriting bundle #0 to file ${out}/bundle.0.pem.\n`,
    );
    const chainPem = await readFile(join(out, 'svid.0.pem'), 'utf8');
    expect(chainPem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(new X509Certificate(chainPem).raw).toEqual(leaf.der);
    const keyPem = await readFile(join(out, 'svid.0.key'), 'utf8');
    expect(keyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true);
    expect(createPrivateKey(keyPem).asymmetricKeyType).toBe('ec');
    expect((await stat(join(out, 'svid.0.key'))).mode & 0o777).toBe(0o600);
    expect(new X509Certificate(await readFile(join(out, 'bundle.0.pem'))).raw).toEqual(root.der);
  });

  it('fetch x509 refuses an SVID that does not chain to its bundle', async () => {
    fake.x509Response = {
      svids: [
        {
          spiffeId: 'spiffe://example.org/web',
          x509Svid: Buffer.concat([leaf.der, intermediate.der]),
          x509SvidKey: leafKey,
          bundle: otherRoot.der,
        },
      ],
    };
    const result = await run('api', 'fetch', 'x509');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      '"spiffe://example.org/web" SVID failed verification against bundle: x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority\n',
    );
  });

  it('fetch x509 refuses an SVID whose leaf is a CA, as spire-agent does', async () => {
    const caLeaf = await issue('CN=web', intermediate, true, 'spiffe://example.org/web');
    fake.x509Response = {
      svids: [
        {
          spiffeId: 'spiffe://example.org/web',
          x509Svid: Buffer.concat([caLeaf.der, intermediate.der]),
          x509SvidKey: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', caLeaf.keys.privateKey)),
          bundle: root.der,
        },
      ],
    };
    const result = await run('api', 'fetch', 'x509');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/certificate validation failed: leaf certificate must not be a CA/);
  });

  it('fetch x509 reports an empty answer', async () => {
    fake.x509Response = { svids: [] };
    expect(await run('api', 'fetch', 'x509')).toMatchObject({
      code: 1,
      stderr: 'workload response contains no svids\n',
    });
  });

  it('fetch jwt sends every audience and prints tokens and bundles', async () => {
    const result = await run('api', 'fetch', 'jwt', '-audience', 'db,cache', '-audience', 'queue');
    expect(result.code).toBe(0);
    expect(fake.requests.map((r) => r.method)).toEqual(['FetchJWTBundles', 'FetchJWTSVID']);
    expect(fake.requests[1]).toMatchObject({
      request: { audience: ['db', 'cache', 'queue'], spiffeId: '' },
      header: 'true',
    });
    expect(result.stdout).toBe(
      'token(spiffe://example.org/web):\n\taaa.bbb.ccc\nhint(spiffe://example.org/web):\n\tinternal\nbundle(spiffe://example.org):\n\t{"keys":[]}\n',
    );
  });

  it('validate jwt prints the SPIFFE ID and claims, or why the SVID is invalid', async () => {
    const good = await run('api', 'validate', 'jwt', '-audience', 'db', '-svid', 'good.token.sig');
    expect(good).toMatchObject({
      code: 0,
      stdout:
        'SVID is valid.\nSPIFFE ID : spiffe://example.org/web\nClaims    : {"aud":["db"],"exp":1767225600,"sub":"spiffe://example.org/web"}\n',
    });
    const bad = await run('api', 'validate', 'jwt', '-audience', 'db', '-svid', 'old.token.sig');
    expect(bad).toMatchObject({ code: 1, stdout: '', stderr: 'SVID is not valid: token has expired\n' });
  });

  it('healthcheck asks grpc.health.v1 on the Workload API socket', async () => {
    expect(await run('healthcheck')).toMatchObject({ code: 0, stdout: 'Agent is healthy.\n' });
    const stderr = capture();
    const code = await main(['healthcheck', '-socketPath', join(dir, 'gone.sock')], {
      stdout: capture(),
      stderr,
    });
    expect(code).toBe(1);
    expect(stderr.text()).toBe('Agent is unhealthy: unable to determine health\n');
  });

  it('an unreachable socket is an Unavailable error', async () => {
    const stderr = capture();
    const code = await main(['api', 'fetch', 'x509', '-socketPath', join(dir, 'gone.sock')], {
      stdout: capture(),
      stderr,
    });
    expect(code).toBe(1);
    expect(stderr.text()).toMatch(/^rpc error: code = Unavailable desc = /);
  });
});

describe('der certificates', () => {
  it('splits concatenated DER and rejects trailing garbage', async () => {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    const a = await issue('CN=a', undefined, true);
    const b = await issue('CN=b', a, false);
    expect(splitDerCertificates(Buffer.concat([b.der, a.der]))).toEqual([b.der, a.der]);
    expect(splitDerCertificates(Buffer.alloc(0))).toEqual([]);
    expect(() => splitDerCertificates(Buffer.concat([a.der, Buffer.from([0x30, 0x05, 0x01])]))).toThrow(
      /truncated/,
    );
    expect(() => splitDerCertificates(Buffer.from([0x04, 0x00]))).toThrow(/malformed/);
  });
});

describe('tspire-agent run', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tspire-agent-run-'));
    file = join(dir, 'agent.conf');
    await writeFile(
      file,
      `agent {
  server_address = "127.0.0.1"
  server_port = "8081"
  trust_domain = "example.org"
  trust_bundle_path = "${dir}/bundle.pem"
}
plugins {
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes the join token flag into the config and stops on SIGINT', async () => {
    const signals = new EventEmitter();
    let started: AgentConfig | undefined;
    let stops = 0;
    const running = main(['run', '-config', file, '-joinToken', 'tok-123', '-serverPort', '9000'], {
      stdout: capture(),
      stderr: capture(),
      signals,
      startAgent: async (config) => {
        started = config;
        return { stop: async () => void stops++, fatal: new Promise<Error>(() => {}) };
      },
    });
    await expect.poll(() => started).toBeDefined();
    expect(started?.agent).toMatchObject({
      joinToken: 'tok-123',
      serverPort: 9000,
      socketPath: '/tmp/spire-agent/public/api.sock',
    });
    signals.emit('SIGINT');
    expect(await running).toBe(0);
    expect(stops).toBe(1);
  });

  it('exits 1 with the reason when the agent stops on its own', async () => {
    const stderr = capture();
    const code = await main(['run', '-config', file], {
      stdout: capture(),
      stderr,
      signals: new EventEmitter(),
      startAgent: async () => ({
        stop: async () => {},
        fatal: Promise.resolve(new Error('agent is banned')),
      }),
    });
    expect(code).toBe(1);
    expect(stderr.text()).toBe('agent is banned\n');
  });

  it('names the file and key of a config error', async () => {
    const bad = join(dir, 'bad.conf');
    await writeFile(bad, (await readFile(file, 'utf8')).replace('"8081"', '"eighty"'));
    const stderr = capture();
    const code = await main(['run', '-config', bad], { stdout: capture(), stderr });
    expect(code).toBe(1);
    expect(stderr.text()).toBe(`${bad}: agent.server_port: invalid port "eighty" (must be 0-65535)\n`);
  });
});
