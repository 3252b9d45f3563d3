import { X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { ok, waitFor, waitUntil } from '../support/waits.js';
import { fetchX509Svid, watchOnceServed, watchX509Svids } from '../support/workload-client.js';

/**
 * A downstream server whose upstream goes away: it keeps issuing from its intermediate with SVID
 * lifetimes shrinking toward the intermediate's NotAfter, retries a new intermediate every 10 s from
 * its half-life on, fails to sign once the intermediate has expired, and is back in business once the
 * upstream returns. Also the upstream-authority admin calls of a downstream.
 */
const pg = await postgresAvailable();
if (!pg.ok) console.warn(pg.reason);
const isRoot = process.getuid?.() === 0;
if (!isRoot)
  console.warn(
    'skipping downstream tests: downstream servers run under their own group id, which needs root',
  );

const TD = 'example.org';
const GID = process.getgid!();

const activeId = (shown: string) => /Active X\.509 authority:\s+Authority ID: (\S+)/.exec(shown)?.[1];

describe.skipIf(!pg.ok || !isRoot)('a downstream server through an upstream outage', () => {
  const run = makeRunDir('sdup-');
  const databases: TestDatabase[] = [];
  let upstream: IdentityStack;
  let downstream: IdentityStack;
  let watch: ReturnType<typeof watchX509Svids>;

  beforeAll(async () => {
    const database = async (name: string) => {
      const db = await createTestDatabase(`sd_up_${name}`);
      databases.push(db);
      return { type: 'postgres' as const, connectionString: db.connectionString };
    };
    mkdirSync(join(run.dir, 'up'));
    mkdirSync(join(run.dir, 'down'));
    upstream = await IdentityStack.create({
      runDir: join(run.dir, 'up'),
      trustDomain: TD,
      database: await database('up'),
      caTtl: '1h',
      // The upstream agent's and the downstream server's own SVIDs outlive the outage.
      x509SvidTtl: '10m',
      syncInterval: '1s',
      agents: 0,
    });
    downstream = await IdentityStack.create({
      runDir: join(run.dir, 'down'),
      trustDomain: TD,
      database: await database('down'),
      // The intermediate lives 60 s (+10 s backdating): half-life ~25 s after issue, expiry at 60 s.
      caTtl: '60s',
      x509SvidTtl: '20s',
      syncInterval: '1s',
      agents: 2,
      upstream,
    });
    await upstream.startServer();
    await downstream.ensureDownstream();
    await downstream.writeBootstrapBundle();
    for (const index of [0, 1]) {
      const node = `spiffe://${TD}/down/agent-${index}`;
      await ok(
        downstream.serverCli([
          'entry',
          'create',
          '-parentID',
          node,
          '-spiffeID',
          `spiffe://${TD}/down/workload-${index}`,
          '-selector',
          `unix:gid:${GID}`,
        ]),
      );
    }
    // The second agent joins after the outage: the first one's own SVID dies with the intermediate.
    await downstream.startAgent(await downstream.generateToken(`spiffe://${TD}/down/agent-0`));
    watch = await watchOnceServed(downstream.agentSockets[0]!, 30_000);
  }, 180_000);

  afterAll(async () => {
    watch?.close();
    await downstream?.stop();
    await upstream?.stop();
    for (const db of databases) await db.drop();
    run.remove();
  }, 60_000);

  it('keeps issuing, caps SVIDs at the intermediate, fails after it expires, and recovers', async () => {
    const first = await fetchX509Svid(downstream.agentSockets[0]!);
    expect(first.chain).toHaveLength(2);
    const intermediate = new X509Certificate(first.chain[1]!);
    const intermediateId = x509AuthorityId(first.chain[1]!);
    const intermediateNotAfter = new Date(intermediate.validTo).getTime();
    expect(intermediateNotAfter - Date.now()).toBeGreaterThan(25_000);

    await upstream.server!.stop();
    const outageStart = Date.now();
    const receivedBefore = watch.received.length;

    // Until the intermediate expires, the downstream keeps signing on its own; then it refuses to sign.
    await waitUntil(
      'the downstream server to refuse to sign with its expired intermediate',
      () => Date.now() > intermediateNotAfter && /the signing CA has expired/.test(downstream.server!.log()),
      intermediateNotAfter - Date.now() + 30_000,
    );
    const duringOutage = watch.received.slice(receivedBefore);
    expect(duringOutage.length).toBeGreaterThan(0);
    for (const svid of duringOutage) expect(svid.notAfter).toBeLessThanOrEqual(intermediateNotAfter);
    expect(duringOutage.some((svid) => svid.notAfter === intermediateNotAfter)).toBe(true);

    const log = downstream.server!.log();
    // Retries of a new intermediate, every rotation check (10 s) once past half-life.
    const retries = log
      .split('\n')
      .filter((line) => line.includes('Unable to rotate X509 CA'))
      .map((line) => (JSON.parse(line) as { time: number }).time)
      .filter((t) => t >= outageStart);
    expect(retries.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < retries.length; i++) {
      expect(retries[i]! - retries[i - 1]!).toBeGreaterThanOrEqual(8000);
      expect(retries[i]! - retries[i - 1]!).toBeLessThanOrEqual(12_500);
    }
    // Past the intermediate's NotAfter nothing can be signed, yet, as SPIRE's, the gRPC health check
    // (the bundle read from the datastore) still passes: nothing restarts the server for it.
    expect(log).toMatch(/the signing CA has expired/);
    expect(await ok(downstream.serverCli(['healthcheck']))).toMatch(/Server is healthy/);
    expect(watch.received.every((svid) => svid.notAfter <= intermediateNotAfter)).toBe(true);

    await upstream.startServer(0);
    const shown = async () => ok(downstream.serverCli(['localauthority', 'x509', 'show']));
    // As SPIRE's, the downstream's channel comes back at its next reconnect attempt: about a minute
    // into the outage, gRPC's backoff (1 s, ×1.6, ±20 %) waits up to ~51 s between attempts; then the
    // next rotation check (10 s) asks for the intermediate.
    const active = await waitFor(
      'the downstream to activate a new intermediate',
      async () => {
        const now = activeId(await shown());
        return now !== intermediateId ? now : undefined;
      },
      95_000,
      500,
    );

    // Issuance resumes: a new agent attests and its workload gets an SVID under the new intermediate.
    await downstream.startAgent(await downstream.generateToken(`spiffe://${TD}/down/agent-1`), 60_000, 1);
    const after = await fetchX509Svid(downstream.agentSockets[1]!, 30_000);
    expect(x509AuthorityId(after.chain[1]!)).toBe(active);
    expect(new Date(new X509Certificate(after.chain[0]!).validTo).getTime()).toBeGreaterThan(Date.now());
  }, 270_000);

  it('refuses local taint on a downstream and handles upstream authorities as SPIRE does', async () => {
    const local = await downstream.serverCli([
      'localauthority',
      'x509',
      'taint',
      '-authorityID',
      activeId(await ok(downstream.serverCli(['localauthority', 'x509', 'show'])))!,
    ]);
    expect(local.code).not.toBe(0);
    expect(local.stderr + local.stdout).toMatch(/can't be tainted if there is an upstream authority/);

    const rootShown = await ok(upstream.serverCli(['localauthority', 'x509', 'show']));
    const signingRoot = activeId(rootShown)!;
    const current = await downstream.serverCli(['upstreamauthority', 'taint', '-subjectKeyID', signingRoot]);
    expect(current.code).not.toBe(0);
    expect(current.stderr + current.stdout).toMatch(
      /unable to use upstream authority signing current authority/,
    );

    // A second root appears upstream; the downstream may distrust it locally, and then drop it.
    const prepared = await ok(upstream.serverCli(['localauthority', 'x509', 'prepare']));
    const spare = /Authority ID: (\S+)/.exec(prepared)![1]!;
    const bundleKeys = async () => {
      const json = await ok(downstream.serverCli(['bundle', 'show', '-format', 'spiffe']));
      return (JSON.parse(json) as { keys: { use: string; x5c?: string[]; kid?: string }[] }).keys;
    };
    const bundleIds = async () =>
      (await bundleKeys())
        .filter((k) => k.use === 'x509-svid')
        .map((k) => x509AuthorityId(Buffer.from(k.x5c![0]!, 'base64')));
    await waitFor(
      `the downstream bundle to hold the upstream's prepared root ${spare}`,
      async () => (await bundleIds()).includes(spare) || undefined,
      20_000,
      500,
    );

    const untainted = await downstream.serverCli(['upstreamauthority', 'revoke', '-subjectKeyID', spare]);
    expect(untainted.stderr + untainted.stdout).toMatch(/untainted authority/);
    expect(await ok(downstream.serverCli(['upstreamauthority', 'taint', '-subjectKeyID', spare]))).toContain(
      spare,
    );
    const again = await downstream.serverCli(['upstreamauthority', 'taint', '-subjectKeyID', spare]);
    expect(again.stderr + again.stdout).toMatch(/already tainted/);
    expect(await ok(downstream.serverCli(['upstreamauthority', 'revoke', '-subjectKeyID', spare]))).toContain(
      spare,
    );
    // Polls of the upstream bundle (every 5 s) do not bring a locally revoked root back. A JWT key
    // prepared upstream after the revoke marks a poll that certainly began after it: once the
    // downstream's bundle holds that key, the revoked root must still be missing.
    const marker = /Authority ID: (\S+)/.exec(
      await ok(upstream.serverCli(['localauthority', 'jwt', 'prepare'])),
    )![1]!;
    await waitFor(
      `a poll of the upstream bundle to bring the JWT key ${marker} prepared after the revoke`,
      async () => (await bundleKeys()).some((k) => k.use === 'jwt-svid' && k.kid === marker) || undefined,
      20_000,
      500,
    );
    expect(await bundleIds()).toEqual([signingRoot]);
    const unknown = await downstream.serverCli([
      'upstreamauthority',
      'taint',
      '-subjectKeyID',
      'ab'.repeat(20),
    ]);
    expect(unknown.stderr + unknown.stdout).toMatch(/no upstream authority found/);
  }, 60_000);
});
