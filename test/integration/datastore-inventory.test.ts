import 'reflect-metadata';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  diffInventory,
  readInventory,
  type DatastoreInventory,
} from '../../deployment/postgres/datastore-inventory.js';
import { openDatastore, type Datastore } from '../../identity-core/datastore/datastore.js';
import type { AttestedNode } from '../../identity-core/datastore/records.js';
import { CaJournal } from '../../identity-core/pki/ca-journal.js';
import { createSelfSignedCa, type CaCertificate } from '../../identity-core/pki/x509-ca.js';
import { withJwtAuthority, withX509Authority } from '../../identity-core/spiffe/trust-bundle.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';

/**
 * The inventory read from a real PostgreSQL datastore written through the server's repositories: a
 * snapshot taken as a "backup", then the changes a server group makes afterwards, which the diff
 * must find and nothing else.
 */
const pg = await postgresAvailable();
if (!pg.ok) console.warn(pg.reason);

const td = 'example.org';

const entry = (name: string) => ({
  spiffeId: `spiffe://${td}/${name}`,
  parentId: `spiffe://${td}/spire/agent/join_token/a0`,
  selectors: [{ type: 'unix', value: `uid:${name.length}` }],
  x509SvidTtl: 0,
  jwtSvidTtl: 0,
  downstream: false,
  admin: false,
  dnsNames: [],
  hint: '',
  expiresAt: 0,
});

const agent = (name: string, serial: string): AttestedNode => ({
  spiffeId: `spiffe://${td}/spire/agent/join_token/${name}`,
  attestationType: 'join_token',
  certSerialNumber: serial,
  certNotAfter: 2_000_000_000,
  newCertSerialNumber: '',
  newCertNotAfter: 0,
  canReattest: false,
  selectors: [],
});

const newCa = () =>
  createSelfSignedCa({
    trustDomain: td,
    privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    ttlSeconds: 3600,
  });

const journalEntry = (ca: CaCertificate) => ({
  authorityId: ca.authorityId,
  keyId: `x509-ca-${ca.authorityId.slice(0, 8)}`,
  notBefore: ca.notBefore,
  notAfter: ca.notAfter,
  material: ca.der.toString('base64'),
});

/** A CA certificate without a SubjectKeyIdentifier, as a foreign bundle may hold. */
async function caWithoutSki(): Promise<Buffer> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, false, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=federated root',
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: algorithm,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return Buffer.from(cert.rawData);
}

describe.skipIf(!pg.ok)('datastore inventory on PostgreSQL', () => {
  let database: TestDatabase;
  let ds: Datastore;
  let journal: CaJournal;
  let journalId: number;
  let firstCa: CaCertificate;
  let jwtKeyId: string;
  let backup: DatastoreInventory;

  beforeAll(async () => {
    database = await createTestDatabase('sd_inventory');
    ds = await openDatastore({ databaseType: 'postgres', connectionString: database.connectionString });
    await ds.entries.create(entry('web'));
    await ds.entries.create(entry('db'));
    await ds.nodes.create(agent('a0', '10'));
    await ds.nodes.create(agent('a1', '20'));
    await ds.joinTokens.create('token-1', 2_000_000_000);
    firstCa = await newCa();
    jwtKeyId = 'K'.repeat(32);
    const publicKeySpki = Buffer.from('not a key, only stored');
    await ds.bundles.set(
      withJwtAuthority(
        withX509Authority(
          { trustDomain: td, x509Authorities: [], jwtAuthorities: [], refreshHint: 0, sequenceNumber: 0 },
          firstCa.der,
        ),
        { keyId: jwtKeyId, publicKeySpki, expiresAt: 0, tainted: false },
      ),
    );
    await ds.bundles.set({
      trustDomain: 'federated.test',
      x509Authorities: [{ der: await caWithoutSki(), tainted: false }],
      jwtAuthorities: [],
      refreshHint: 0,
      sequenceNumber: 1,
    });
    journal = new CaJournal();
    journal.bootstrap('x509', journalEntry(firstCa));
    journal.bootstrap('jwt', {
      authorityId: jwtKeyId,
      keyId: 'jwt-key-1',
      notBefore: firstCa.notBefore,
      notAfter: firstCa.notAfter,
      material: publicKeySpki.toString('base64'),
    });
    journalId = await ds.caJournals.save({
      data: journal.toJSON(),
      activeX509AuthorityId: firstCa.authorityId,
    });
    backup = await readInventory(database.connectionString);
  });

  afterAll(async () => {
    await ds?.close();
    await database?.drop();
  });

  it('holds ids and short facts of everything the server stores', () => {
    expect(backup.takenAt).toBeGreaterThan(Date.now() - 60_000);
    expect(backup.entries.map((e) => [e.spiffeId, e.revision]).sort()).toEqual([
      [`spiffe://${td}/db`, 0],
      [`spiffe://${td}/web`, 0],
    ]);
    expect(backup.agents).toEqual([
      {
        spiffeId: `spiffe://${td}/spire/agent/join_token/a0`,
        serial: '10',
        newSerial: '',
        expiresAt: 2_000_000_000,
      },
      {
        spiffeId: `spiffe://${td}/spire/agent/join_token/a1`,
        serial: '20',
        newSerial: '',
        expiresAt: 2_000_000_000,
      },
    ]);
    expect(backup.joinTokens).toBe(1);
    expect(backup.bundles).toEqual([
      { trustDomain: td, x509: [firstCa.authorityId], jwt: [jwtKeyId] },
      { trustDomain: 'federated.test', x509: [expect.stringMatching(/^sha256:[0-9a-f]{16}$/)], jwt: [] },
    ]);
    expect(backup.journal).toEqual([
      {
        id: journalId,
        activeX509AuthorityId: firstCa.authorityId,
        authorities: [
          { kind: 'x509', id: firstCa.authorityId, status: 'ACTIVE', tainted: false },
          { kind: 'jwt', id: jwtKeyId, status: 'ACTIVE', tainted: false },
        ],
      },
    ]);
    // Only ids: no certificate or key material goes into workflow history.
    expect(JSON.stringify(backup)).not.toContain(firstCa.der.toString('base64').slice(0, 40));
  });

  it('finds exactly what changed after the backup', async () => {
    const added = await ds.entries.create(entry('api'));
    // a0 renewed and then presented its new SVID: the server made the new serial current.
    await ds.nodes.updateSerials(agent('a0', '').spiffeId, {
      newCertSerialNumber: '11',
      newCertNotAfter: 2_000_000_100,
    });
    await ds.nodes.updateSerials(agent('a0', '').spiffeId, {
      certSerialNumber: '11',
      certNotAfter: 2_000_000_100,
      newCertSerialNumber: '',
      newCertNotAfter: 0,
    });
    // a1 renewed but still presents the SVID the backup knows: not a loss.
    await ds.nodes.updateSerials(agent('a1', '').spiffeId, {
      newCertSerialNumber: '21',
      newCertNotAfter: 2_000_000_100,
    });
    const secondCa = await newCa();
    await ds.bundles.update(td, (b) => withX509Authority(b!, secondCa.der));
    journal.prepare('x509', journalEntry(secondCa));
    journal.activate('x509', secondCa.authorityId);
    await ds.caJournals.save({
      id: journalId,
      data: journal.toJSON(),
      activeX509AuthorityId: secondCa.authorityId,
    });

    const live = await readInventory(database.connectionString);
    expect(diffInventory(live, backup)).toEqual({
      entries: {
        missing: [{ id: added.id, spiffeId: added.spiffeId, parentId: added.parentId, revision: 0 }],
        stale: [],
        extra: [],
      },
      agents: {
        missing: [],
        staleSerial: [
          { spiffeId: agent('a0', '').spiffeId, serial: '11', backupSerial: '10', backupNewSerial: '' },
        ],
        banLifted: [],
      },
      bundles: [{ trustDomain: td, missingX509: [secondCa.authorityId], missingJwt: [] }],
      journal: {
        missingAuthorities: [
          { journalId, kind: 'x509', id: secondCa.authorityId, status: 'ACTIVE', tainted: false },
        ],
        activeChanged: [{ journalId, live: secondCa.authorityId, backup: firstCa.authorityId }],
      },
      empty: false,
    });
    expect(diffInventory(live, live).empty).toBe(true);
  });
});

describe('datastore inventory failures', () => {
  it('names the database it could not reach, quickly and without the password', async () => {
    const started = Date.now();
    const error = await readInventory('postgres://postgres:s3cret@127.0.0.1:1/spire_a').catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toMatch(
      /^cannot read the datastore inventory of database "spire_a" on 127\.0\.0\.1:1: /,
    );
    expect((error as Error).message).not.toContain('s3cret');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it.skipIf(!pg.ok)('names a database that has no datastore schema', async () => {
    const empty = await createTestDatabase('sd_inventory_empty');
    try {
      await expect(readInventory(empty.connectionString)).rejects.toThrow(
        /cannot read the datastore inventory of database "sd_inventory_empty_[0-9a-f]+" on .*: relation "registered_entries" does not exist/,
      );
    } finally {
      await empty.drop();
    }
  });
});
