import 'reflect-metadata';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { X509Certificate, generateKeyPairSync, webcrypto } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../identity-core/cli/server-cli.js';
import type { Entry } from '../../identity-core/proto/gen/spire/api/types/Entry.js';
import {
  agentService,
  bundleService,
  entryService,
  healthService,
  localAuthorityService,
  type AgentHandlers,
  type BundleHandlers,
  type EntryHandlers,
  type HealthHandlers,
  type LocalAuthorityHandlers,
} from '../../identity-core/proto/services.js';
import type { ServerConfig } from '../../identity-core/server/server-config.js';
import { UnixGrpcFake } from '../support/unix-grpc-fake.js';

function capture() {
  const chunks: string[] = [];
  return { write: (chunk: string) => chunks.push(chunk), text: () => chunks.join('') };
}

async function selfSignedCa(): Promise<Buffer> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'C=US, O=SPIFFE',
    notBefore: new Date('2025-01-01T00:00:00Z'),
    notAfter: new Date('2035-01-01T00:00:00Z'),
    keys: keys as unknown as webcrypto.CryptoKeyPair,
    signingAlgorithm: algorithm,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return Buffer.from(certificate.rawData);
}

type Call = { method: string; request: unknown };

/** A stand-in for tspire-server's admin API: records every call and answers from canned data. */
class FakeAdminServer extends UnixGrpcFake {
  readonly calls: Call[] = [];
  readonly entries = new Map<string, Entry>();
  caDer: Buffer = Buffer.alloc(0);
  jwtKey: Buffer = Buffer.alloc(0);
  healthStatus: 'SERVING' | 'NOT_SERVING' = 'SERVING';
  private nextId = 1;

  constructor() {
    super();
    const record = (method: string, request: unknown) => this.calls.push({ method, request });
    const notFound = (details: string) => ({ code: grpc.status.NOT_FOUND, details });
    const entryHandlers: Partial<EntryHandlers> = {
      BatchCreateEntry: (call, done) => {
        record('BatchCreateEntry', call.request);
        const results = call.request.entries.map((entry) => {
          if (entry.spiffeId?.path === '/dup') {
            return { status: { code: grpc.status.ALREADY_EXISTS, message: 'similar entry already exists' } };
          }
          const id = entry.id || `entry-${this.nextId++}`;
          const stored: Entry = { ...entry, id, revisionNumber: 0 };
          this.entries.set(id, stored);
          return { status: { code: 0, message: 'OK' }, entry: stored };
        });
        done(null, { results });
      },
      ListEntries: (call, done) => {
        record('ListEntries', call.request);
        const wanted = call.request.filter?.bySpiffeId?.path;
        const all = [...this.entries.values()].filter((e) => !wanted || e.spiffeId?.path === wanted);
        // Two pages, to prove the command follows next_page_token.
        const first = call.request.pageToken === '';
        done(null, {
          entries: first ? all.slice(0, 1) : all.slice(1),
          nextPageToken: first && all.length > 1 ? 'p2' : '',
        });
      },
      GetEntry: (call, done) => {
        record('GetEntry', call.request);
        const entry = this.entries.get(call.request.id);
        if (entry) done(null, entry);
        else done(notFound('entry not found'));
      },
      BatchDeleteEntry: (call, done) => {
        record('BatchDeleteEntry', call.request);
        done(null, {
          results: call.request.ids.map((id) =>
            this.entries.delete(id)
              ? { status: { code: 0 }, id }
              : { status: { code: grpc.status.NOT_FOUND, message: 'entry not found' }, id },
          ),
        });
      },
    };
    const agentHandlers: Partial<AgentHandlers> = {
      CreateJoinToken: (call, done) => {
        record('CreateJoinToken', call.request);
        done(null, { value: 'c0ffee00-1111-2222-3333-444455556666', expiresAt: 1_900_000_000 });
      },
      ListAgents: (call, done) => {
        record('ListAgents', call.request);
        done(null, {
          agents: [
            {
              id: { trustDomain: 'example.org', path: '/spire/agent/join_token/abc' },
              attestationType: 'join_token',
              x509svidSerialNumber: '12345',
              x509svidExpiresAt: 1_767_225_600,
              canReattest: false,
            },
          ],
          nextPageToken: '',
        });
      },
      BanAgent: (call, done) => {
        record('BanAgent', call.request);
        done(notFound('agent not found'));
      },
      DeleteAgent: (call, done) => {
        record('DeleteAgent', call.request);
        done(null, {});
      },
    };
    const bundleHandlers: Partial<BundleHandlers> = {
      GetBundle: (call, done) => {
        record('GetBundle', call.request);
        done(null, {
          trustDomain: 'example.org',
          x509Authorities: [{ asn1: this.caDer, tainted: false }],
          jwtAuthorities: [{ publicKey: this.jwtKey, keyId: 'kid-1', expiresAt: 0 }],
          sequenceNumber: 4,
          refreshHint: 300,
        });
      },
    };
    const healthHandlers: Partial<HealthHandlers> = {
      Check: (call, done) => {
        record('Check', call.request);
        done(null, { status: this.healthStatus });
      },
    };
    const authority = { authorityId: 'a1b2c3', expiresAt: 1_767_225_600, upstreamAuthoritySubjectKeyId: '' };
    const localAuthorityHandlers: Partial<LocalAuthorityHandlers> = {
      GetX509AuthorityState: (call, done) => {
        record('GetX509AuthorityState', call.request);
        done(null, { active: authority, prepared: null, old: { ...authority, authorityId: 'old1' } });
      },
      TaintX509Authority: (call, done) => {
        record('TaintX509Authority', call.request);
        // JWT key ids may start with a dash; the CLI must pass them through as values.
        if (call.request.authorityId === '-dash1')
          return done(null, { taintedAuthority: { ...authority, authorityId: '-dash1' } });
        if (call.request.authorityId !== 'old1') {
          done({
            code: grpc.status.FAILED_PRECONDITION,
            details: 'only the old local authority can be tainted',
          });
        } else done(null, { taintedAuthority: { ...authority, authorityId: 'old1' } });
      },
    };
    // Methods left out answer UNIMPLEMENTED, which no test expects to see.
    const untyped = (handlers: object) => handlers as grpc.UntypedServiceImplementation;
    this.server.addService(entryService, untyped(entryHandlers));
    this.server.addService(agentService, untyped(agentHandlers));
    this.server.addService(bundleService, untyped(bundleHandlers));
    this.server.addService(healthService, untyped(healthHandlers));
    this.server.addService(localAuthorityService, untyped(localAuthorityHandlers));
  }

  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
}

describe('tspire-server against a fake admin API', () => {
  let dir: string;
  let socketPath: string;
  let fake: FakeAdminServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tspire-cli-'));
    socketPath = join(dir, 'api.sock');
    fake = new FakeAdminServer();
    fake.caDer = await selfSignedCa();
    fake.jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'der',
    });
    await fake.listen(socketPath);
  });

  afterAll(async () => {
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    fake.calls.length = 0;
  });

  async function run(...argv: string[]) {
    const stdout = capture();
    const stderr = capture();
    const code = await main([...argv, '-socketPath', socketPath], { stdout, stderr });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  }

  it('entry create sends the entry and prints it', async () => {
    const result = await run(
      'entry',
      'create',
      '-parentID',
      'spiffe://example.org/spire/agent/join_token/abc',
      '-spiffeID',
      'spiffe://example.org/web',
      '-selector',
      'unix:uid:1000',
      '-selector',
      'unix:gid:50',
      '-x509SVIDTTL',
      '600',
      '-dns',
      'web.local',
      '-downstream',
      '-entryID',
      'web-1',
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        'Entry ID                : web-1',
        'SPIFFE ID               : spiffe://example.org/web',
        'Parent ID               : spiffe://example.org/spire/agent/join_token/abc',
        'Revision                : 0',
        'Downstream              : true',
        'X509-SVID TTL           : 600',
        'JWT-SVID TTL            : default',
        'Selector                : unix:uid:1000',
        'Selector                : unix:gid:50',
        'DNS name                : web.local',
        '',
        '',
      ].join('\n'),
    );
    const request = fake.calls[0]?.request as { entries: Record<string, unknown>[] };
    expect(fake.methods()).toEqual(['BatchCreateEntry']);
    expect(request.entries[0]).toMatchObject({
      id: 'web-1',
      spiffeId: { trustDomain: 'example.org', path: '/web' },
      parentId: { trustDomain: 'example.org', path: '/spire/agent/join_token/abc' },
      selectors: [
        { type: 'unix', value: 'uid:1000' },
        { type: 'unix', value: 'gid:50' },
      ],
      x509SvidTtl: 600,
      jwtSvidTtl: 0,
      downstream: true,
      admin: false,
      dnsNames: ['web.local'],
    });
  });

  it('entry create reports a per-entry failure on stderr and exits 1', async () => {
    const result = await run(
      'entry',
      'create',
      '-parentID',
      'spiffe://example.org/a',
      '-spiffeID',
      'spiffe://example.org/dup',
      '-selector',
      'unix:uid:1',
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      'Failed to create the following entry (code: AlreadyExists, msg: "similar entry already exists"):\nEntry ID                : (none)\nSPIFFE ID               : spiffe://example.org/dup\n',
    );
    expect(result.stderr.endsWith('Error: failed to create one or more entries\n')).toBe(true);
  });

  it('entry show lists every page, sorted, with a count', async () => {
    fake.entries.clear();
    fake.entries.set('z', {
      id: 'z',
      spiffeId: { trustDomain: 'example.org', path: '/z' },
      parentId: { trustDomain: 'example.org', path: '/p' },
      selectors: [{ type: 'unix', value: 'uid:2' }],
      revisionNumber: 3,
      x509SvidTtl: 0,
      jwtSvidTtl: 90,
      expiresAt: 1_767_225_600,
      admin: true,
      hint: 'ext',
    });
    fake.entries.set('a', {
      id: 'a',
      spiffeId: { trustDomain: 'example.org', path: '/a' },
      parentId: { trustDomain: 'example.org', path: '/p' },
      selectors: [
        { type: 'unix', value: 'uid:1' },
        { type: 'k8s', value: 'ns:x' },
      ],
    });
    const result = await run('entry', 'show');
    expect(result.code).toBe(0);
    expect(fake.methods()).toEqual(['ListEntries', 'ListEntries']);
    expect(result.stdout).toBe(
      [
        'Found 2 entries',
        'Entry ID                : a',
        'SPIFFE ID               : spiffe://example.org/a',
        'Parent ID               : spiffe://example.org/p',
        'Revision                : 0',
        'X509-SVID TTL           : default',
        'JWT-SVID TTL            : default',
        'Selector                : k8s:ns:x',
        'Selector                : unix:uid:1',
        '',
        'Entry ID                : z',
        'SPIFFE ID               : spiffe://example.org/z',
        'Parent ID               : spiffe://example.org/p',
        'Revision                : 3',
        'X509-SVID TTL           : default',
        'JWT-SVID TTL            : 90',
        'Expiration time         : 2026-01-01 00:00:00 +0000 UTC',
        'Selector                : unix:uid:2',
        'Admin                   : true',
        'Hint                    : ext',
        '',
        '',
      ].join('\n'),
    );
  });

  it('entry show filters by SPIFFE ID and fetches one entry by ID', async () => {
    const bySpiffeId = await run('entry', 'show', '-spiffeID', 'spiffe://example.org/z');
    expect(bySpiffeId.stdout.startsWith('Found 1 entry\nEntry ID                : z\n')).toBe(true);
    expect(fake.calls[0]?.request).toMatchObject({
      filter: { bySpiffeId: { trustDomain: 'example.org', path: '/z' }, byDownstream: null },
      pageSize: 500,
    });

    const missing = await run('entry', 'show', '-entryID', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      'Error: error fetching entry ID nope: rpc error: code = NotFound desc = entry not found\n',
    );
  });

  it('entry delete prints SPIRE’s summary lines', async () => {
    const ok = await run('entry', 'delete', '-entryID', 'a');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('Deleted entry with ID: a\n\n\nDeleted 1 entries successfully\n');
    const gone = await run('entry', 'delete', '-entryID', 'a');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(
      'Failed to delete entry with ID a (code: NotFound, msg: "entry not found")\nError: failed to delete one or more entries\n',
    );
  });

  it('token generate prints the token and sends TTL and SPIFFE ID', async () => {
    const result = await run('token', 'generate', '-spiffeID', 'spiffe://example.org/node1', '-ttl', '120');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Token: c0ffee00-1111-2222-3333-444455556666\n');
    expect(fake.calls[0]?.request).toMatchObject({
      ttl: 120,
      agentId: { trustDomain: 'example.org', path: '/node1' },
    });

    const withoutId = await run('token', 'generate');
    expect(withoutId.stdout).toBe(
      'Token: c0ffee00-1111-2222-3333-444455556666\nWarning: Missing SPIFFE ID.\n',
    );
    expect(fake.calls[1]?.request).toMatchObject({ ttl: 600, agentId: null });
  });

  it('bundle show prints PEM by default and a SPIFFE bundle on request', async () => {
    const pem = await run('bundle', 'show', '-format', 'pem');
    expect(pem.code).toBe(0);
    expect(pem.stdout).toMatch(
      /^-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n$/,
    );
    expect(new X509Certificate(pem.stdout).raw).toEqual(fake.caDer);
    expect((await run('bundle', 'show')).stdout).toBe(pem.stdout);

    const spiffe = await run('bundle', 'show', '-format', 'spiffe');
    const document = JSON.parse(spiffe.stdout) as {
      keys: Record<string, unknown>[];
      spiffe_sequence: number;
    };
    expect(
      spiffe.stdout.startsWith(
        '{\n    "keys": [\n        {\n            "use": "x509-svid",\n            "kty": "EC"',
      ),
    ).toBe(true);
    expect(document.spiffe_sequence).toBe(4);
    expect(document).toMatchObject({ spiffe_refresh_hint: 300 });
    expect(document.keys[0]).toMatchObject({
      use: 'x509-svid',
      kty: 'EC',
      crv: 'P-256',
      x5c: [fake.caDer.toString('base64')],
    });
    expect(Object.keys(document.keys[1] ?? {})).toEqual(['use', 'kty', 'kid', 'crv', 'x', 'y']);
    expect(document.keys[1]).toMatchObject({ use: 'jwt-svid', kid: 'kid-1' });
  });

  it('agent list, ban and evict', async () => {
    const list = await run('agent', 'list');
    expect(list.stdout).toBe(
      [
        'Found 1 attested agent:',
        '',
        'SPIFFE ID         : spiffe://example.org/spire/agent/join_token/abc',
        'Attestation type  : join_token',
        'Expiration time   : 2026-01-01 00:00:00 +0000 UTC',
        'Serial number     : 12345',
        'Can re-attest     : false',
        '',
        '',
      ].join('\n'),
    );
    const ban = await run('agent', 'ban', '-spiffeID', 'spiffe://example.org/spire/agent/join_token/abc');
    expect(ban).toMatchObject({
      code: 1,
      stderr: 'Error: rpc error: code = NotFound desc = agent not found\n',
    });
    const evict = await run('agent', 'evict', '-spiffeID', 'spiffe://example.org/spire/agent/join_token/abc');
    expect(evict).toMatchObject({ code: 0, stdout: 'Agent evicted successfully\n' });
    expect(fake.calls.at(-1)?.request).toEqual({
      id: { trustDomain: 'example.org', path: '/spire/agent/join_token/abc' },
    });
  });

  it('localauthority x509 show and taint', async () => {
    const show = await run('localauthority', 'x509', 'show');
    expect(show.stdout).toBe(
      [
        'Active X.509 authority:',
        '  Authority ID: a1b2c3',
        '  Expires at: 2026-01-01 00:00:00 +0000 UTC',
        '  Upstream authority ID: No upstream authority',
        '',
        'Prepared X.509 authority:',
        '  No prepared X.509 authority found',
        '',
        'Old X.509 authority:',
        '  Authority ID: old1',
        '  Expires at: 2026-01-01 00:00:00 +0000 UTC',
        '  Upstream authority ID: No upstream authority',
        '',
      ].join('\n'),
    );
    const refused = await run('localauthority', 'x509', 'taint', '-authorityID', 'a1b2c3');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'Error: could not taint X.509 authority: rpc error: code = FailedPrecondition desc = only the old local authority can be tainted\n',
    );
    const tainted = await run('localauthority', 'x509', 'taint', '-authorityID', 'old1');
    expect(tainted.stdout.startsWith('Tainted X.509 authority:\n  Authority ID: old1\n')).toBe(true);
    const dashed = await run('localauthority', 'x509', 'taint', '-authorityID', '-dash1');
    expect(
      dashed.stdout.startsWith('Tainted X.509 authority:\n  Authority ID: -dash1\n'),
      dashed.stderr,
    ).toBe(true);
  });

  it('healthcheck reports healthy, unhealthy and unreachable servers', async () => {
    expect(await run('healthcheck')).toMatchObject({ code: 0, stdout: 'Server is healthy.\n' });
    fake.healthStatus = 'NOT_SERVING';
    expect(await run('healthcheck')).toMatchObject({
      code: 1,
      stderr: 'Error: server is unhealthy: server returned status "NOT_SERVING"\n',
    });
    fake.healthStatus = 'SERVING';
    const stderr = capture();
    const code = await main(['healthcheck', '-verbose', '-socketPath', join(dir, 'absent.sock')], {
      stdout: capture(),
      stderr,
    });
    expect(code).toBe(1);
    expect(stderr.text()).toMatch(/^Failed to check health: rpc error: code = Unavailable desc = .*\n/);
    expect(stderr.text().endsWith('Error: server is unhealthy: unable to determine health\n')).toBe(true);
  });
});

describe('tspire-server run', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tspire-run-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts the server with the loaded config, flags applied, and stops it on SIGTERM', async () => {
    const file = join(dir, 'server.conf');
    await writeFile(
      file,
      `server {
  trust_domain = "example.org"
  data_dir = "${dir}"
  ca_ttl = "6h"
  default_x509_svid_ttl = "2h"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "pglite"
      connection_string = "memory://"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`,
    );
    const signals = new EventEmitter();
    let started: ServerConfig | undefined;
    let stopped = false;
    const stderr = capture();
    const running = main(
      ['run', '-config', file, '-socketPath', join(dir, 'admin.sock'), '-logLevel', 'DEBUG'],
      {
        stdout: capture(),
        stderr,
        signals,
        startServer: async (config) => {
          started = config;
          return {
            stop: async () => {
              stopped = true;
            },
          };
        },
      },
    );
    await expect.poll(() => started).toBeDefined();
    expect(started?.server.socketPath).toBe(join(dir, 'admin.sock'));
    expect(started?.server.logLevel).toBe('debug');
    expect(stderr.text()).toContain('Warning: default_x509_svid_ttl (2h) exceeds 1h');
    expect(stopped).toBe(false);
    signals.emit('SIGTERM');
    expect(await running).toBe(0);
    expect(stopped).toBe(true);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('prints config errors with the file and key, and never starts', async () => {
    const stderr = capture();
    let started = false;
    const code = await main(['run', '-config', join(dir, 'nope.conf')], {
      stdout: capture(),
      stderr,
      startServer: async () => {
        started = true;
        return { stop: async () => {} };
      },
    });
    expect(code).toBe(1);
    expect(started).toBe(false);
    expect(stderr.text()).toMatch(
      /nope\.conf: could not find config file .*nope\.conf: please use the -config flag\n$/,
    );
  });
});
