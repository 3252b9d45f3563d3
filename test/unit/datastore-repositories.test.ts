import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  openDatastore,
  type Datastore,
  type DatastoreConfig,
} from '../../identity-core/datastore/datastore.js';
import {
  AlreadyExistsError,
  DatastoreUnavailableError,
  NotFoundError,
} from '../../identity-core/datastore/errors.js';
import type { RegistrationEntry } from '../../identity-core/datastore/records.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';

const pg = await postgresAvailable();
if (!pg.ok) console.warn(pg.reason);

const entry = (
  spiffeId: string,
  selectors = [{ type: 'unix', value: 'uid:1000' }],
): Omit<RegistrationEntry, 'id' | 'createdAt' | 'revisionNumber'> => ({
  spiffeId,
  parentId: 'spiffe://example.org/node',
  selectors,
  x509SvidTtl: 0,
  jwtSvidTtl: 0,
  downstream: false,
  admin: false,
  dnsNames: ['a.example.org', 'b.example.org'],
  hint: '',
  expiresAt: 0,
});

const backends = [
  { name: 'PGlite', skip: false, postgres: false },
  { name: 'PostgreSQL', skip: !pg.ok, postgres: true },
];

describe.each(backends)('datastore on $name', ({ skip, postgres }) => {
  const run = makeRunDir('sdds-');
  let config: DatastoreConfig;
  let database: TestDatabase | undefined;
  let ds: Datastore;

  beforeAll(async () => {
    if (skip) return;
    database = postgres ? await createTestDatabase('sd_datastore') : undefined;
    config = database
      ? { databaseType: 'postgres', connectionString: database.connectionString }
      : { databaseType: 'pglite', connectionString: `${run.dir}/db` };
    ds = await openDatastore(config);
  });
  afterAll(async () => {
    await ds?.close();
    await database?.drop();
    run.remove();
  });

  it.skipIf(skip)('stores entries with selectors and DNS names, and lists them in one pass', async () => {
    const created = await ds.entries.create(entry('spiffe://example.org/web'));
    expect(created.id).toMatch(/[0-9a-f-]{36}/);
    const fetched = await ds.entries.get(created.id);
    expect(fetched).toEqual(created);
    expect(fetched!.dnsNames).toEqual(['a.example.org', 'b.example.org']);
    expect((await ds.entries.listAll()).map((e) => e.spiffeId)).toContain('spiffe://example.org/web');
    expect(
      await ds.entries.list({ parentId: 'spiffe://example.org/node', spiffeId: 'spiffe://example.org/web' }),
    ).toHaveLength(1);
  });

  it.skipIf(skip)('refuses a duplicate entry and writes nothing', async () => {
    const before = (await ds.entries.listAll()).length;
    const error = await ds.entries.create(entry('spiffe://example.org/web')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlreadyExistsError);
    expect((error as AlreadyExistsError).existing?.spiffeId).toBe('spiffe://example.org/web');
    expect((await ds.entries.listAll()).length).toBe(before);
    // Same ID and parent with other selectors is a different entry.
    await ds.entries.create(entry('spiffe://example.org/web', [{ type: 'unix', value: 'uid:1001' }]));
  });

  it.skipIf(skip)('updates an entry in place: new fields, same creation time, next revision', async () => {
    const created = await ds.entries.create(entry('spiffe://example.org/before'));
    const updated = await ds.entries.update(created.id, {
      ...entry('spiffe://example.org/after', [{ type: 'unix', value: 'gid:7' }]),
      dnsNames: ['c.example.org'],
      hint: 'moved',
    });
    expect(updated).toMatchObject({
      id: created.id,
      spiffeId: 'spiffe://example.org/after',
      selectors: [{ type: 'unix', value: 'gid:7' }],
      dnsNames: ['c.example.org'],
      hint: 'moved',
      createdAt: created.createdAt,
      revisionNumber: created.revisionNumber + 1,
    });
    expect(await ds.entries.get(created.id)).toEqual(updated);
    // Taking another entry's SPIFFE ID, parent and selectors is a duplicate, and changes nothing.
    const error = await ds.entries
      .update(created.id, entry('spiffe://example.org/web'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlreadyExistsError);
    expect(await ds.entries.get(created.id)).toEqual(updated);
    await expect(ds.entries.update('no-such-entry', entry('spiffe://example.org/x'))).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it.skipIf(skip)('rolls back a transaction that fails halfway', async () => {
    const before = await ds.entries.listAll();
    await expect(
      ds.transaction(async (tx) => {
        await tx.joinTokens.create('rollback-token', 9e9);
        await tx.entries.create(entry('spiffe://example.org/half'));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await ds.entries.listAll()).toEqual(before);
    expect(await ds.joinTokens.take('rollback-token')).toBeUndefined();
  });

  it.skipIf(skip)('deletes entries with their selectors', async () => {
    const created = await ds.entries.create(entry('spiffe://example.org/gone'));
    expect((await ds.entries.delete(created.id)).id).toBe(created.id);
    expect(await ds.entries.get(created.id)).toBeUndefined();
    await expect(ds.entries.delete(created.id)).rejects.toBeInstanceOf(NotFoundError);
    const orphans = await ds.sql.query('SELECT * FROM selectors WHERE entry_id = $1', [created.id]);
    expect(orphans).toEqual([]);
  });

  it.skipIf(skip)('takes a join token once, expired or not', async () => {
    await ds.joinTokens.create('t1', Math.floor(Date.now() / 1000) + 600);
    await ds.joinTokens.create('t-expired', 1);
    expect((await ds.joinTokens.take('t1'))?.token).toBe('t1');
    expect(await ds.joinTokens.take('t1')).toBeUndefined();
    expect((await ds.joinTokens.take('t-expired'))?.expiresAt).toBe(1);
    expect(await ds.joinTokens.take('t-expired')).toBeUndefined();
  });

  it.skipIf(skip)('tracks agent serials and bans', async () => {
    await ds.nodes.create({
      spiffeId: 'spiffe://example.org/spire/agent/join_token/x',
      attestationType: 'join_token',
      certSerialNumber: '1',
      certNotAfter: 100,
      newCertSerialNumber: '',
      newCertNotAfter: 0,
      canReattest: false,
      selectors: [],
    });
    await ds.nodes.updateSerials('spiffe://example.org/spire/agent/join_token/x', {
      newCertSerialNumber: '2',
      newCertNotAfter: 200,
    });
    expect(await ds.nodes.get('spiffe://example.org/spire/agent/join_token/x')).toMatchObject({
      certSerialNumber: '1',
      newCertSerialNumber: '2',
      newCertNotAfter: 200,
    });
    await ds.nodes.ban('spiffe://example.org/spire/agent/join_token/x');
    expect(await ds.nodes.get('spiffe://example.org/spire/agent/join_token/x')).toMatchObject({
      certSerialNumber: '',
      newCertSerialNumber: '',
    });
    await expect(ds.nodes.ban('spiffe://example.org/spire/agent/join_token/none')).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it.skipIf(skip)('loses no bundle update when updates race', async () => {
    const td = 'race.example';
    await ds.bundles.set({
      trustDomain: td,
      x509Authorities: [],
      jwtAuthorities: [],
      refreshHint: 0,
      sequenceNumber: 0,
    });
    await Promise.all(
      Array.from({ length: 10 }, () =>
        ds.bundles.update(td, (b) => ({ ...b!, sequenceNumber: b!.sequenceNumber + 1 })),
      ),
    );
    expect((await ds.bundles.get(td))?.sequenceNumber).toBe(10);
  });

  it.skipIf(skip)('keeps data across close and reopen, and migrations are idempotent', async () => {
    await ds.close();
    ds = await openDatastore(config);
    expect((await ds.entries.list({ spiffeId: 'spiffe://example.org/web' })).length).toBe(2);
    const versions = await ds.sql.query<{ version: number }>('SELECT version FROM migrations');
    expect(versions.map((v) => v.version)).toEqual([1]);
  });
});

describe('datastore failures', () => {
  it('reports an unreachable PostgreSQL as unavailable within seconds', async () => {
    const started = Date.now();
    const error = await openDatastore({
      databaseType: 'postgres',
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatastoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('loses nothing committed when the process is killed right after', async () => {
    const run = makeRunDir('sdkill-');
    const dir = `${run.dir}/db`;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', new URL('./fixtures/commit-then-wait.ts', import.meta.url).pathname, dir],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('committed')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`child exited with ${code} before committing`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const ds = await openDatastore({ databaseType: 'pglite', connectionString: dir });
    try {
      expect((await ds.entries.list({ spiffeId: 'spiffe://example.org/survivor' })).length).toBe(1);
    } finally {
      await ds.close();
      run.remove();
    }
  });
});
