import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { PostgresInstance } from '../../deployment/postgres/postgres-instance.js';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { postgresBinDirOrSkip } from '../support/managed-postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { waitFor, waitUntil } from '../support/waits.js';

/**
 * max_attested_node_info_staleness during a datastore outage, as SPIRE v1.13.3 behaves: the agent's
 * calls on its open connection are authorized from the attested node cache, yet its sync fails at
 * GetBundle (the bundle is read from the datastore, cached for a second only), and a new connection is
 * refused for want of the bundle. So the knob does not carry renewals through the outage.
 */
const binDir = await postgresBinDirOrSkip('the node info staleness test');
const CACHE_METRIC = 'spire_server_node_cache_authorized_agent_calls';

describe.skipIf(!binDir)('max_attested_node_info_staleness while the datastore is down', () => {
  const run = makeRunDir('sdns-');
  let postgres: PostgresInstance | undefined;
  let stack: IdentityStack | undefined;
  afterAll(async () => {
    await stack?.stop();
    await postgres?.stop('immediate').catch(() => undefined);
    run.remove();
  });

  it('authorizes agent calls from the node cache while the sync still fails at the bundle', async () => {
    postgres = new PostgresInstance({ dir: join(run.dir, 'pg'), port: await freePort() });
    await postgres.ensureRunning(60_000);
    const url = await postgres.createDatabase('spire');
    const metricsPort = await freePort();
    stack = await IdentityStack.create({
      runDir: join(run.dir, 'stack'),
      database: { type: 'postgres', connectionString: url },
      syncInterval: '1s',
      serverKnobs: { maxAttestedNodeInfoStaleness: '5m' },
      telemetry: {
        serverMetricsPort: metricsPort,
        serverHealthPort: await freePort(),
        agentMetricsPort: await freePort(),
        agentHealthPort: await freePort(),
      },
    });
    const cacheAuthorized = async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${CACHE_METRIC} `));
      if (!line) throw new Error(`${CACHE_METRIC} is not exported`);
      return Number(line.split(' ')[1]);
    };
    await stack.startServer();
    await stack.startAgent(await stack.generateToken('spiffe://example.org/staleness/node'));
    // Within the window, steady syncs are authorized from the cache (filled by its 5 s rebuild).
    await waitFor(
      'an agent call authorized from the node cache',
      async () => (await cacheAuthorized()) > 0 || undefined,
      20_000,
    );

    const before = await cacheAuthorized();
    const stoppedAt = Date.now();
    await postgres.stop('immediate');
    const agent = stack.agent!;
    const failuresSince = () =>
      agent
        .log()
        .split('\n')
        .filter((line) => line.includes('Synchronize failed'))
        .map((line) => JSON.parse(line) as { time: number; err: string })
        .filter((entry) => entry.time > stoppedAt);
    await waitUntil('two failed syncs with the datastore down', () => failuresSince().length >= 2, 20_000);

    const failures = failuresSince();
    const after = await cacheAuthorized();
    console.log(
      `node cache authorizations: ${before} before the stop, ${after} after; failed syncs: ${failures.map((f) => f.err).join(' | ')}`,
    );
    // Authorized without the datastore: the staleness window did its part…
    expect(after).toBeGreaterThan(before);
    // …but the first failure is GetBundle's (the entries came), and the new connection the agent opens
    // after it is refused, as the server cannot read the bundle to check its certificate.
    expect(failures[0]!.err).toMatch(/13 INTERNAL: failed to fetch bundle/);
    expect(failures[1]!.err).toMatch(/^14 UNAVAILABLE/);
    expect(stack.server!.log()).not.toContain('Unable to look up agent information');
    expect(agent.isRunning()).toBe(true);
  }, 60_000);
});
