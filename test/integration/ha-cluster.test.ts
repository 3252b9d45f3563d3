import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { loggedAfter, waitUntil } from '../support/waits.js';
import { watchOnceServed, watchX509Svids } from '../support/workload-client.js';

/**
 * Three tspire-servers sharing one PostgreSQL datastore, each with its own CA, behind the TCP load
 * balancer: the agent keeps renewing while any one server lives, and keeps serving its cache while
 * the balancer is down.
 */
const pg = await postgresAvailable();
if (!pg.ok) console.warn(pg.reason);

const WORKLOAD = 'spiffe://example.org/ha/workload';

describe.skipIf(!pg.ok)('HA servers behind a load balancer', () => {
  const run = makeRunDir('sdha-');
  let database: TestDatabase;
  let stack: IdentityStack;
  let watch: ReturnType<typeof watchX509Svids>;
  const authorities: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('sd_ha');
    stack = await IdentityStack.create({
      runDir: run.dir,
      servers: 3,
      loadBalancer: true,
      database: { type: 'postgres', connectionString: database.connectionString },
      // Lifetime 30 s with the 10 s backdating: renewals every ~5 s. (At 10 s the SVID would be half spent on issue.)
      x509SvidTtl: '20s',
      // The agent's own SVID outlives the balancer outage even on a loaded machine: this test is about
      // workload renewals, not about the agent expiring (agent-renewal.test.ts covers that).
      agentTtl: '5m',
      syncInterval: '1s',
    });
    await stack.startServer();
    for (let i = 0; i < 3; i++) {
      const shown = await stack.serverCli(['localauthority', 'x509', 'show'], i);
      authorities.push(/Active X\.509 authority:\s+Authority ID: (\S+)/.exec(shown.stdout)![1]!);
    }
    const token = await stack.generateToken('spiffe://example.org/ha/node');
    const created = await stack.serverCli([
      'entry',
      'create',
      '-parentID',
      'spiffe://example.org/ha/node',
      '-spiffeID',
      WORKLOAD,
      '-selector',
      `unix:uid:${process.getuid!()}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    await stack.startAgent(token);
    // The entry reaches the server the agent lands on at that server's next entry-cache reload (5 s).
    watch = await watchOnceServed(stack.agentSocket, 30_000);
  });

  afterAll(async () => {
    watch?.close();
    await stack?.stop();
    await database?.drop();
    run.remove();
  });

  it('gives every server its own CA and publishes all of them in the shared bundle', async () => {
    expect(new Set(authorities).size).toBe(3);
    const bundle = await stack.serverCli(['bundle', 'show', '-format', 'pem'], 2);
    expect(bundle.stdout.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
  });

  it('keeps renewing through the last server when two are killed', async () => {
    await stack.servers[0]!.kill();
    await stack.servers[2]!.kill();
    const killedAt = Date.now();
    await waitUntil(
      'two renewals after the kill',
      () => watch.received.filter((s) => s.receivedAt > killedAt).length >= 2,
      40_000,
    );
    const after = watch.received.filter((s) => s.receivedAt > killedAt);
    // The first one may have been in flight; the second was certainly signed by the survivor.
    expect(after.at(-1)!.authorityKeyId).toBe(authorities[1]);
    expect(watch.errors).toEqual([]);
  });

  it('serves cached SVIDs while the balancer is down and resumes renewals once it is back', async () => {
    await stack.balancer!.kill();
    const downAt = Date.now();
    // A renewal was due once the held SVID passed 55 % of its life (the latest of the renewal
    // window): wait until the agent has tried and failed to sync after that, with no balancer.
    const held = watch.received.at(-1)!;
    const renewalDue = Math.max(downAt + 1000, held.notBefore + 0.55 * (held.notAfter - held.notBefore));
    await waitUntil(
      'a failed synchronization after the held SVID was due for renewal',
      () => loggedAfter(stack.agent!.log(), 'Synchronize failed', renewalDue),
      40_000,
    );
    const duringOutage = watch.received.filter((s) => s.receivedAt > downAt + 1000);
    expect(duringOutage, 'no renewal without a path to a server').toEqual([]);
    expect(stack.agent!.log()).toContain('Synchronize failed');

    const probe = watchX509Svids(stack.agentSocket);
    try {
      await waitUntil('the cached SVID on a new stream', () => probe.received.length > 0, 5_000);
      expect(probe.received[0]!.serial).toBe(watch.received.at(-1)!.serial);
    } finally {
      probe.close();
    }

    await stack.startBalancer();
    const backAt = Date.now();
    await waitUntil(
      'a renewal after the balancer returned',
      () => watch.received.some((s) => s.receivedAt > backAt),
      40_000,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}\nagent log tail:\n${stack.agent!.log().split('\n').slice(-15).join('\n')}`,
      );
    });
    const resumedAfterMs = watch.received.find((s) => s.receivedAt > backAt)!.receivedAt - backAt;
    // Within one sync interval (1 s) plus the backoff the agent had reached when the balancer came back
    // (the last retry delay it logged), plus slack for process start-up on a loaded machine.
    const retries = stack
      .agent!.log()
      .split('\n')
      .filter((line) => line.includes('Synchronize failed'))
      .map((line) => JSON.parse(line) as { time: number; retry_in_ms: number })
      .filter((entry) => entry.time <= backAt);
    // SPIRE's spacing: the first retry after a success waits 1.5 sync intervals, ±10 %.
    expect(retries[0]!.retry_in_ms).toBeGreaterThanOrEqual(1350);
    expect(retries[0]!.retry_in_ms).toBeLessThanOrEqual(1650);
    const backoff = retries.at(-1)!.retry_in_ms;
    expect(resumedAfterMs).toBeLessThan(1000 + backoff + 4000);
  });
});
