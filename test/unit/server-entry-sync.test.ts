import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistrationEntry } from '../../identity-core/datastore/records.js';
import type { SyncAuthorizedEntriesRequest } from '../../identity-core/proto/gen/spire/api/server/entry/v1/SyncAuthorizedEntriesRequest.js';
import type { SyncAuthorizedEntriesResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/SyncAuthorizedEntriesResponse.js';
import { EntryClientCtor, entryService, type EntryClient } from '../../identity-core/proto/services.js';
import { syncAuthorizedEntries } from '../../identity-core/server/entry-sync.js';
import { bidiStream } from '../../identity-core/transport/rpc-handlers.js';
import { makeRunDir } from '../support/run-dir.js';
import { UnixGrpcFake } from '../support/unix-grpc-fake.js';

/**
 * SyncAuthorizedEntries' exchange over real gRPC, with a page of 2 so that both of SPIRE's paths
 * (everything in one response; revisions in pages, then the entries asked for in pages) show.
 */
const PAGE = 2;
const TD = 'example.org';

function entry(n: number): RegistrationEntry {
  return {
    id: `entry-${n}`,
    spiffeId: `spiffe://${TD}/workload/${n}`,
    parentId: `spiffe://${TD}/node`,
    selectors: [{ type: 'unix', value: `uid:${1000 + n}` }],
    x509SvidTtl: 0,
    jwtSvidTtl: 0,
    downstream: false,
    admin: false,
    dnsNames: [],
    hint: '',
    expiresAt: 0,
    createdAt: 1_700_000_000 + n,
    revisionNumber: n * 10,
  };
}

/** A server whose caller is authorized for `entries` of the current test. */
class SyncServer extends UnixGrpcFake {
  entries: RegistrationEntry[] = [];
  constructor() {
    super();
    this.server.addService(entryService, {
      SyncAuthorizedEntries: bidiStream(
        'entry.v1.Entry',
        'SyncAuthorizedEntries',
        () => undefined,
        (call) => syncAuthorizedEntries(call, this.entries, PAGE),
      ),
    });
  }
}

/** The agent's side of one exchange: send, then read the responses up to one not flagged `more`. */
class Exchange {
  private readonly stream: grpc.ClientDuplexStream<
    SyncAuthorizedEntriesRequest,
    SyncAuthorizedEntriesResponse__Output
  >;
  private readonly received: SyncAuthorizedEntriesResponse__Output[] = [];
  private waiting: (() => void) | undefined;
  readonly status: Promise<grpc.StatusObject>;

  constructor(client: EntryClient) {
    this.stream = client.SyncAuthorizedEntries();
    this.stream.on('data', (response: SyncAuthorizedEntriesResponse__Output) => {
      this.received.push(response);
      this.waiting?.();
    });
    this.stream.on('error', () => undefined);
    this.status = new Promise((resolve) => this.stream.on('status', resolve));
  }

  async ask(request: SyncAuthorizedEntriesRequest): Promise<SyncAuthorizedEntriesResponse__Output[]> {
    this.stream.write(request);
    const pages: SyncAuthorizedEntriesResponse__Output[] = [];
    for (;;) {
      while (this.received.length === 0) await new Promise<void>((resolve) => (this.waiting = resolve));
      const page = this.received.shift()!;
      pages.push(page);
      if (!page.more) return pages;
    }
  }

  close(): void {
    this.stream.end();
  }
}

const FULL_MASK = { revisionNumber: true, spiffeId: true, parentId: true, selectors: true, createdAt: true };

describe('SyncAuthorizedEntries', () => {
  const run = makeRunDir('ses-');
  const server = new SyncServer();
  let client: EntryClient;

  beforeAll(async () => {
    const socket = join(run.dir, 'entry.sock');
    await server.listen(socket);
    client = new EntryClientCtor(`unix:${socket}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client.close();
    await server.stop();
    run.remove();
  });

  it('sends a set that fits in a page whole, in one response, and ends the call', async () => {
    server.entries = [entry(1), entry(2)];
    const exchange = new Exchange(client);
    const [only, ...rest] = await exchange.ask({ outputMask: FULL_MASK });
    expect(rest).toEqual([]);
    expect(only!.entryRevisions).toEqual([]);
    expect(only!.entries.map((e) => e.id)).toEqual(['entry-1', 'entry-2']);
    expect(only!.entries[0]!.spiffeId).toEqual({ trustDomain: TD, path: '/workload/1' });
    expect((await exchange.status).code).toBe(grpc.status.OK);
  });

  it('pages a larger set as revisions, then answers requests for full entries in id order, page by page', async () => {
    server.entries = [4, 0, 2, 3, 1].map(entry);
    const exchange = new Exchange(client);
    const revisions = await exchange.ask({ outputMask: FULL_MASK });
    expect(revisions.map((p) => p.more)).toEqual([true, true, false]);
    expect(revisions.every((p) => p.entries.length === 0)).toBe(true);
    expect(revisions.flatMap((p) => p.entryRevisions)).toEqual(
      [4, 0, 2, 3, 1].map((n) => ({
        id: `entry-${n}`,
        revisionNumber: n * 10,
        createdAt: 1_700_000_000 + n,
      })),
    );

    const full = await exchange.ask({ ids: ['entry-4', 'entry-0', 'gone', 'entry-2'] });
    expect(full.map((p) => p.more)).toEqual([true, false]);
    expect(full.map((p) => p.entries.map((e) => e.id))).toEqual([['entry-0', 'entry-2'], ['entry-4']]);
    expect(full.every((p) => p.entryRevisions.length === 0)).toBe(true);

    const nothing = await exchange.ask({ ids: ['gone'] });
    expect(nothing).toEqual([{ entries: [], entryRevisions: [], more: false }]);
    exchange.close();
    expect((await exchange.status).code).toBe(grpc.status.OK);
  });

  it('returns only the fields of the output mask, and the id', async () => {
    server.entries = [entry(7)];
    const exchange = new Exchange(client);
    const [page] = await exchange.ask({ outputMask: { revisionNumber: true, selectors: true } });
    const sent = page!.entries[0]!;
    expect(sent.id).toBe('entry-7');
    expect(sent.revisionNumber).toBe(70);
    expect(sent.selectors).toEqual([{ type: 'unix', value: 'uid:1007' }]);
    expect(sent.spiffeId).toBeNull();
    expect(sent.parentId).toBeNull();
    expect(sent.createdAt).toBe(0);
  });

  it('refuses ids on the first request and a mask without the revision number, as SPIRE does', async () => {
    server.entries = [entry(1)];
    const withIds = new Exchange(client);
    withIds.ask({ ids: ['entry-1'] }).catch(() => undefined);
    const refusedIds = await withIds.status;
    expect(refusedIds.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refusedIds.details).toBe('specifying IDs on initial request is not supported');

    const masked = new Exchange(client);
    masked.ask({ outputMask: { spiffeId: true } }).catch(() => undefined);
    const refusedMask = await masked.status;
    expect(refusedMask.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refusedMask.details).toBe('revision number cannot be masked');
  });
});
