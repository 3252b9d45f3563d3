import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatastore, type Datastore } from '../../identity-core/datastore/datastore.js';
import { MemoryKeyManager } from '../../identity-core/pki/key-manager.js';
import { CaManager } from '../../identity-core/server/ca/ca-manager.js';
import { ServerMetrics } from '../../identity-core/server/server-metrics.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import type { TlsIdentity } from '../../identity-core/transport/peer-tagged-server.js';
import { untilPast } from '../support/waits.js';

/** A root server's CA manager on an in-memory datastore, driven through the local authority API's steps. */
describe('CaManager (root server)', () => {
  let datastore: Datastore;
  let dataDir: string;
  let keyManager: MemoryKeyManager;
  let logs: { msg: string; authority_id?: string }[];
  // Each test its own trust domain: the datastore (slow to open) is shared, bundles are per trust domain.
  let trustDomain: string;
  let tests = 0;
  const managers: CaManager[] = [];

  const newManager = (caTtl = 3600) => {
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    const manager = new CaManager({
      trustDomain,
      dataDir,
      keyManager,
      datastore,
      caTtl,
      serverSvidTtl: 600,
      // Never due during a test: every rotation here is forced.
      rotationCheckIntervalMs: 3_600_000,
      metrics: new ServerMetrics(),
      logger,
    });
    managers.push(manager);
    return manager;
  };
  const x509Ids = async (ca: CaManager) =>
    (await ca.bundle()).x509Authorities.map((a) => [x509AuthorityId(a.der), a.tainted]);
  const issuedBy = async (ca: CaManager, identity: TlsIdentity, authorityId: string) => {
    const authority = (await ca.bundle()).x509Authorities.find((a) => x509AuthorityId(a.der) === authorityId);
    return new X509Certificate(identity.certificateChain[0]!).checkIssued(
      new X509Certificate(authority!.der),
    );
  };

  beforeAll(async () => {
    datastore = await openDatastore({ databaseType: 'pglite', connectionString: 'memory://' });
  });

  afterAll(async () => {
    await datastore.close();
  });

  beforeEach(async () => {
    trustDomain = `td${++tests}.example.org`;
    dataDir = await mkdtemp(join(tmpdir(), 'ca-manager-'));
    keyManager = new MemoryKeyManager();
    logs = [];
  });

  afterEach(async () => {
    for (const manager of managers.splice(0)) manager.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("fails SPIRE's CA health check once the active CA can no longer sign", async () => {
    // A 2 s CA, never rotated here: from its NotAfter on, the test SVID cannot be signed.
    const ca = newManager(2);
    await ca.start();
    expect(ca.healthProblems()).toEqual({});
    const notAfter = (await ca.authorityState('x509')).active!.expiresAt;
    await untilPast('the CA to expire', notAfter * 1000);
    expect(ca.healthProblems()).toEqual({ sign_x509_svid_err: 'the signing CA has expired' });
  });

  it('rotates the X.509 CA: prepare publishes, activate re-mints the server SVID, taint marks, revoke removes', async () => {
    const ca = newManager();
    await ca.start();
    expect(ca.healthProblems()).toEqual({});
    const first = (await ca.authorityState('x509')).active!;
    expect(await x509Ids(ca)).toEqual([[first.authorityId, false]]);
    const identities: TlsIdentity[] = [];
    ca.onServerIdentityChange((identity) => identities.push(identity));

    const prepared = await ca.prepare('x509');
    expect(await x509Ids(ca)).toEqual([
      [first.authorityId, false],
      [prepared.authorityId, false],
    ]);
    expect(identities).toEqual([]);

    await ca.activate('x509', prepared.authorityId);
    expect(await ca.authorityState('x509')).toMatchObject({
      active: { authorityId: prepared.authorityId },
      old: { authorityId: first.authorityId },
    });
    expect(identities).toHaveLength(1);
    expect(ca.serverTlsIdentity()).toEqual(identities[0]);
    expect(await issuedBy(ca, identities[0]!, prepared.authorityId)).toBe(true);
    expect(await issuedBy(ca, identities[0]!, first.authorityId)).toBe(false);

    await ca.taint('x509', first.authorityId);
    expect(await x509Ids(ca)).toEqual([
      [first.authorityId, true],
      [prepared.authorityId, false],
    ]);
    await ca.revoke('x509', first.authorityId);
    expect(await x509Ids(ca)).toEqual([[prepared.authorityId, false]]);
    expect((await ca.authorityState('x509')).old?.authorityId).toBe(first.authorityId);
    expect(logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'X509 CA prepared',
        'X509 CA activated',
        'X.509 authority tainted successfully',
        'X.509 authority revoked successfully',
      ]),
    );
  });

  it('taints and revokes an old JWT key with the same steps, and refuses what SPIRE refuses', async () => {
    const ca = newManager();
    await ca.start();
    const first = (await ca.authorityState('jwt')).active!;
    await expect(ca.taint('jwt', first.authorityId)).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      message: 'unable to taint current local authority',
    });
    await expect(ca.revoke('jwt', first.authorityId)).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    const prepared = await ca.prepare('jwt');
    await ca.activate('jwt', prepared.authorityId);
    await expect(ca.revoke('jwt', first.authorityId)).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      message: 'it is not possible to revoke an untainted authority',
    });
    await ca.taint('jwt', first.authorityId);
    expect((await ca.bundle()).jwtAuthorities.map((k) => [k.keyId, k.tainted])).toEqual(
      expect.arrayContaining([
        [first.authorityId, true],
        [prepared.authorityId, false],
      ]),
    );
    await ca.revoke('jwt', first.authorityId);
    expect((await ca.bundle()).jwtAuthorities.map((k) => k.keyId)).toEqual([prepared.authorityId]);
    expect(logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['JWT authority tainted successfully', 'JWT authority revoked successfully']),
    );
    await expect(ca.taintUpstream('abc')).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      message: 'upstream authority is not configured',
    });
  });

  it('leaves the journal as it was when a step fails, and a restart resumes the persisted journal', async () => {
    const ca = newManager();
    await ca.start();
    const prepared = await ca.prepare('x509');
    await expect(ca.activate('x509', 'not-an-authority')).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    expect((await ca.authorityState('x509')).prepared).toEqual(prepared);
    await ca.activate('x509', prepared.authorityId);
    ca.stop();
    const activations = logs.filter((l) => l.msg === 'X509 CA activated').length;

    const restarted = newManager();
    await restarted.start();
    expect((await restarted.authorityState('x509')).active).toEqual(prepared);
    // Resumed, not bootstrapped: no new authority was activated.
    expect(logs.filter((l) => l.msg === 'X509 CA activated')).toHaveLength(activations);
  });
});
