import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { makeRunDir } from '../support/run-dir.js';
import { loggedAfter, waitUntil, within } from '../support/waits.js';
import { watchX509Svids } from '../support/workload-client.js';

/**
 * Done-means 3 of the identity-core issue: with a 20 s X509-SVID TTL the agent renews each workload
 * SVID while 45–55 % of its lifetime remains, the open Workload API stream delivers the new one, and
 * with the server gone the agent keeps serving what it holds.
 */
const TTL = 20;
const LIFETIME_MS = (TTL + 10) * 1000;
const SYNC_INTERVAL_MS = 1000;
const WORKLOAD_ID = 'spiffe://example.org/renewal/workload';

describe('agent renewal at half-life and cache during a server outage', () => {
  const run = makeRunDir('sdr-');
  let stack: IdentityStack;

  beforeAll(async () => {
    stack = await IdentityStack.create({ runDir: run.dir, x509SvidTtl: `${TTL}s`, syncInterval: '1s' });
    await stack.startServer();
    const token = await stack.generateToken('spiffe://example.org/renewal/node');
    const created = await stack.serverCli([
      'entry',
      'create',
      '-parentID',
      'spiffe://example.org/renewal/node',
      '-spiffeID',
      WORKLOAD_ID,
      '-selector',
      `unix:uid:${process.getuid!()}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    await stack.startAgent(token);
  });

  afterAll(async () => {
    await stack?.stop();
    run.remove();
  });

  it('renews when 45–55 % of the lifetime remains and streams the new SVID', async () => {
    const watch = watchX509Svids(stack.agentSocket);
    try {
      await waitUntil('three SVIDs on the stream', () => watch.received.length >= 3, 3 * LIFETIME_MS);
      expect(watch.errors).toEqual([]);
      const svids = watch.received;
      for (const svid of svids) {
        expect(svid.spiffeId).toBe(WORKLOAD_ID);
        expect(svid.notAfter - svid.notBefore).toBe(LIFETIME_MS);
      }
      // The first SVID may have been issued before the stream opened; judge each renewal that followed one we saw.
      for (let i = 1; i < svids.length; i++) {
        const previous = svids[i - 1]!;
        const renewal = svids[i]!;
        expect(renewal.serial).not.toBe(previous.serial);
        const remaining = (previous.notAfter - renewal.receivedAt) / LIFETIME_MS;
        // Renewal happens at the first sync after the jittered threshold: allow one sync interval plus
        // certificate times' one-second precision below 45 %, and that precision above 55 %.
        expect(remaining).toBeGreaterThanOrEqual(0.45 - (SYNC_INTERVAL_MS + 1500) / LIFETIME_MS);
        expect(remaining).toBeLessThanOrEqual(0.55 + 1000 / LIFETIME_MS);
      }
    } finally {
      watch.close();
    }
  });

  it('keeps serving the cached SVID with the server stopped', async () => {
    const before = watchX509Svids(stack.agentSocket);
    await waitUntil('an SVID before the outage', () => before.received.length >= 1, 10_000);
    before.close();

    await stack.server!.stop();
    const stoppedAt = Date.now();
    expect(stack.server!.isRunning()).toBe(false);
    // Once the agent has found the server gone, it has nothing new to offer but must not drop what it has.
    await waitUntil(
      'the agent to fail a synchronization with the server stopped',
      () => loggedAfter(stack.agent!.log(), 'Synchronize failed', stoppedAt),
      15_000,
    );

    const during = watchX509Svids(stack.agentSocket);
    try {
      await waitUntil('an SVID during the outage', () => during.received.length >= 1, 10_000);
      expect(during.errors).toEqual([]);
      const served = during.received.at(-1)!;
      expect(served.spiffeId).toBe(WORKLOAD_ID);
      // Issued before the server went away (NotBefore is backdated 10 s; certificate times have 1 s precision).
      expect(served.notBefore + 10_000).toBeLessThanOrEqual(stoppedAt + 1000);
      expect(stack.agent!.isRunning()).toBe(true);
    } finally {
      during.close();
    }
  });

  it('exits once its own SVID has expired and cannot be renewed', async () => {
    // The server stays down from the previous test; the agent SVID (30 s lifetime) runs out meanwhile.
    expect(stack.server!.isRunning()).toBe(false);
    const outcome = await within('the agent to exit', stack.agent!.exited, 60_000);
    expect(outcome).toBe(1);
    expect(stack.agent!.log()).toContain('Agent SVID has expired and could not be renewed');
  }, 90_000);
});
