import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ServerAdmin } from '../../deployment/implementation/server-admin.js';
import { realSpire } from '../../deployment/implementation/spire.js';
import { tspire } from '../../deployment/implementation/tspire.js';
import type { Entry } from '../../identity-core/proto/gen/spire/api/types/Entry.js';
import {
  agentService,
  bundleService,
  entryService,
  healthService,
  type AgentHandlers,
  type BundleHandlers,
  type EntryHandlers,
  type HealthHandlers,
} from '../../identity-core/proto/services.js';
import { toPem } from '../../identity-core/spiffe/pem.js';
import { UnixGrpcFake } from '../support/unix-grpc-fake.js';

/** An admin API that keeps entries in memory and records the requests it was sent. */
class RecordingAdminApi extends UnixGrpcFake {
  readonly requests: { method: string; request: unknown }[] = [];
  readonly entries: Entry[] = [];
  refuseCreate = false;
  serving = true;
  readonly roots = [Buffer.from('first root'), Buffer.from('second root')];

  constructor() {
    super();
    const record = (method: string, request: unknown) => this.requests.push({ method, request });
    const entry: Partial<EntryHandlers> = {
      ListEntries: (call, done) => {
        record('ListEntries', call.request);
        const filter = call.request.filter;
        const found = this.entries.filter(
          (e) =>
            e.spiffeId?.path === filter?.bySpiffeId?.path &&
            (filter?.byDownstream == null || e.downstream === filter.byDownstream.value),
        );
        // One entry a page, so that following next_page_token is what finds the second.
        const at = Number(call.request.pageToken || '0');
        const next = at + 1 < found.length ? String(at + 1) : '';
        done(null, { entries: found.slice(at, at + 1), nextPageToken: next });
      },
      BatchCreateEntry: (call, done) => {
        record('BatchCreateEntry', call.request);
        if (this.refuseCreate)
          return done(null, {
            results: [
              { status: { code: grpc.status.ALREADY_EXISTS, message: 'similar entry already exists' } },
            ],
          });
        const stored = { ...call.request.entries[0]!, id: `id-${this.entries.length}` };
        this.entries.push(stored);
        done(null, { results: [{ status: { code: 0, message: 'OK' }, entry: stored }] });
      },
      BatchDeleteEntry: (call, done) => {
        record('BatchDeleteEntry', call.request);
        const id = call.request.ids[0]!;
        const at = this.entries.findIndex((e) => e.id === id);
        if (at < 0)
          return done(null, {
            results: [{ id, status: { code: grpc.status.NOT_FOUND, message: 'entry not found' } }],
          });
        this.entries.splice(at, 1);
        done(null, { results: [{ id, status: { code: 0, message: 'OK' } }] });
      },
    };
    const agent: Partial<AgentHandlers> = {
      CreateJoinToken: (call, done) => {
        record('CreateJoinToken', call.request);
        done(null, { value: 'token-1', expiresAt: 0 });
      },
      ListAgents: (call, done) => {
        record('ListAgents', call.request);
        done({ code: grpc.status.INTERNAL, details: 'datastore unreachable' });
      },
    };
    const bundle: Partial<BundleHandlers> = {
      GetBundle: (_call, done) =>
        done(null, {
          trustDomain: 'example.org',
          x509Authorities: this.roots.map((asn1) => ({ asn1, tainted: false })),
          jwtAuthorities: [],
        }),
    };
    const health: Partial<HealthHandlers> = {
      Check: (_call, done) => done(null, { status: this.serving ? 'SERVING' : 'NOT_SERVING' }),
    };
    const untyped = (handlers: object) => handlers as grpc.UntypedServiceImplementation;
    this.server.addService(entryService, untyped(entry));
    this.server.addService(agentService, untyped(agent));
    this.server.addService(bundleService, untyped(bundle));
    this.server.addService(healthService, untyped(health));
  }

  sent(method: string): unknown[] {
    return this.requests.filter((r) => r.method === method).map((r) => r.request);
  }
}

describe('ServerAdmin', () => {
  let dir: string;
  let api: RecordingAdminApi;
  let admin: ServerAdmin;
  const downstream = {
    parentId: 'spiffe://example.org/downstream/mid/node',
    spiffeId: 'spiffe://example.org/downstream/mid',
    selectors: ['unix:gid:4242'],
    downstream: true,
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'server-admin-'));
    api = new RecordingAdminApi();
    await api.listen(join(dir, 'api.sock'));
    admin = tspire.admin(join(dir, 'api.sock'));
  });

  afterAll(async () => {
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    api.requests.length = 0;
    api.entries.length = 0;
    api.refuseCreate = false;
    api.serving = true;
  });

  it('is what both implementations hand out for a socket', () => {
    expect(tspire.admin('/s.sock')).toBeInstanceOf(ServerAdmin);
    expect(realSpire.admin('/s.sock')).toEqual(tspire.admin('/s.sock'));
  });

  it('registers a downstream entry once, with the fields the CLI flags set', async () => {
    expect(await admin.ensureEntry(downstream)).toBe(true);
    expect(await admin.ensureEntry(downstream)).toBe(false);
    expect(api.sent('BatchCreateEntry')).toHaveLength(1);
    expect(api.sent('BatchCreateEntry')[0]).toMatchObject({
      entries: [
        {
          parentId: { trustDomain: 'example.org', path: '/downstream/mid/node' },
          spiffeId: { trustDomain: 'example.org', path: '/downstream/mid' },
          selectors: [{ type: 'unix', value: 'gid:4242' }],
          downstream: true,
          admin: false,
          x509SvidTtl: 0,
          jwtSvidTtl: 0,
          dnsNames: [],
        },
      ],
    });
    expect(api.sent('ListEntries')[0]).toMatchObject({
      filter: { bySpiffeId: { path: '/downstream/mid' }, byDownstream: { value: true } },
    });
  });

  it('finds a workload entry whatever its downstream flag, across pages, and deletes each', async () => {
    const workload = { ...downstream, downstream: false };
    await admin.createEntry(downstream);
    await admin.createEntry({ ...workload, parentId: 'spiffe://example.org/other' });
    expect(api.sent('ListEntries')).toHaveLength(0);
    expect(await admin.ensureEntry(workload)).toBe(false);
    expect(api.sent('ListEntries')[0]).toMatchObject({ filter: { byDownstream: null } });
    const found = await admin.findEntries(workload.spiffeId);
    expect(found.map((e) => e.id)).toEqual(['id-0', 'id-1']);
    for (const entry of found) await admin.deleteEntry(entry.id);
    expect(api.entries).toEqual([]);
  });

  it('words a refused entry, a failed delete and an unanswered list once, with the server reason', async () => {
    api.refuseCreate = true;
    await expect(admin.createEntry(downstream)).rejects.toThrow(
      'entry create for spiffe://example.org/downstream/mid failed: rpc error: code = AlreadyExists desc = similar entry already exists',
    );
    await expect(admin.deleteEntry('gone')).rejects.toThrow(
      'entry delete of gone failed: rpc error: code = NotFound desc = entry not found',
    );
    await expect(admin.listAgents()).rejects.toThrow(
      'agent list failed: rpc error: code = Internal desc = datastore unreachable',
    );
  });

  it('makes a join token for an agent id with the CLI default TTL', async () => {
    expect(await admin.generateJoinToken('spiffe://example.org/agent/0')).toBe('token-1');
    expect(api.sent('CreateJoinToken')).toEqual([
      { ttl: 600, token: '', agentId: { trustDomain: 'example.org', path: '/agent/0' } },
    ]);
  });

  it("gives the bundle's X.509 roots as PEM", async () => {
    expect(await admin.bundlePem()).toBe(api.roots.map((der) => toPem(der)).join(''));
  });

  it('is healthy only while the server answers SERVING', async () => {
    expect(await admin.healthy()).toBe(true);
    api.serving = false;
    expect(await admin.healthy()).toBe(false);
    expect(await tspire.admin(join(dir, 'absent.sock')).healthy()).toBe(false);
  });
});
