import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { workloadMetadata } from '../../identity-core/proto/services.js';
import { InspectorSession } from '../support/inspector-session.js';
import { makeRunDir } from '../support/run-dir.js';
import { waitFor } from '../support/waits.js';
import { fetchJwtSvid, workloadClient } from '../support/workload-client.js';

/**
 * Issue 14: a workload asking for JWT-SVIDs with ever new audience sets must not leave the agent's
 * heap grown. Each set here is as large as the agent accepts (8 KiB of audiences); 3000 of them
 * would hold ~58 MB in an unbounded cache. The agent keeps at most `jwt_svid_cache_size` (1000) and
 * drops each when it expires, so its live heap stays under 50 MB and, one JWT TTL after the flood,
 * is back where it was.
 */
const TTL_SECONDS = 20;
const SETS = 3000;
const AUDIENCES_PER_SET = 8;
const AUDIENCE_BYTES = 1000;
const CONCURRENCY = 16;
const LIMIT_BYTES = 50 * 1024 * 1024;
/** What the agent may keep beyond its pre-flood heap once every flooded token has expired. */
const RESIDUE_BYTES = 5 * 1024 * 1024;
const NODE_ID = 'spiffe://example.org/memory/node';
const WORKLOAD_ID = 'spiffe://example.org/memory/workload';

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

describe('agent heap after a JWT-SVID audience flood', () => {
  const run = makeRunDir('sdm-');
  let stack: IdentityStack;
  let inspector: InspectorSession;
  let metricsPort: number;

  /** The agent's heap as its metrics report it, right after a full collection: what it still holds. */
  async function liveHeap(): Promise<number> {
    await inspector.send('HeapProfiler.collectGarbage');
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const sample = /^spire_agent_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
    if (!sample) throw new Error(`no spire_agent_nodejs_heap_size_used_bytes in /metrics:\n${text}`);
    return Number(sample[1]);
  }

  function fetchJwtSvidFor(client: ReturnType<typeof workloadClient>, audience: string[]): Promise<string> {
    return new Promise((resolve, reject) =>
      client.FetchJWTSVID({ audience }, workloadMetadata(), (error, response) => {
        const token = response?.svids[0]?.svid;
        if (error || !token) reject(error ?? new Error('no JWT-SVID returned'));
        else resolve(token);
      }),
    );
  }

  beforeAll(async () => {
    metricsPort = await freePort();
    const inspectorPort = await freePort();
    stack = await IdentityStack.create({
      runDir: run.dir,
      jwtSvidTtl: `${TTL_SECONDS}s`,
      agentInspectorPort: inspectorPort,
      telemetry: {
        serverMetricsPort: await freePort(),
        serverHealthPort: await freePort(),
        agentMetricsPort: metricsPort,
        agentHealthPort: await freePort(),
      },
    });
    await stack.startServer();
    const token = await stack.generateToken(NODE_ID);
    const created = await stack.serverCli([
      'entry',
      'create',
      '-parentID',
      NODE_ID,
      '-spiffeID',
      WORKLOAD_ID,
      '-selector',
      `unix:uid:${process.getuid!()}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    await stack.startAgent(token);
    // Until its first sync brings the entry, the agent answers PermissionDenied.
    await waitFor('a first JWT-SVID', () => fetchJwtSvid(stack.agentSocket, 'warm-up'), 30_000);
    inspector = await InspectorSession.open(inspectorPort);
  });

  afterAll(async () => {
    inspector?.close();
    await stack?.stop();
    run.remove();
  });

  it(
    'keeps the live heap under 50 MB and returns it within one JWT TTL',
    async () => {
      const before = await liveHeap();

      const client = workloadClient(stack.agentSocket);
      let next = 0;
      const tokens = new Set<string>();
      const flood = async () => {
        while (next < SETS) {
          const set = next++;
          // Distinct from the first bytes, so that no two sets share a cache entry.
          const audience = Array.from({ length: AUDIENCES_PER_SET }, (_, i) =>
            `flood-${set}-${i}-`.padEnd(AUDIENCE_BYTES, 'a'),
          );
          tokens.add(await fetchJwtSvidFor(client, audience));
        }
      };
      try {
        await Promise.all(Array.from({ length: CONCURRENCY }, flood));
      } finally {
        client.close();
      }
      const floodEnd = Date.now();
      expect(tokens.size).toBe(SETS);

      const afterFlood = await liveHeap();
      console.log(`agent live heap: ${mb(before)} before, ${mb(afterFlood)} after ${SETS} audience sets`);
      expect(afterFlood).toBeLessThan(LIMIT_BYTES);

      // Each flooded token expires at most one TTL after the flood; the sweep and a scrape take moments.
      const deadline = floodEnd + TTL_SECONDS * 1000 + 2000;
      const returned = await waitFor(
        `the agent's live heap back within ${mb(RESIDUE_BYTES)} of ${mb(before)}`,
        async () => {
          const heap = await liveHeap();
          if (heap > before + RESIDUE_BYTES) throw new Error(`still ${mb(heap)}`);
          return heap;
        },
        deadline - Date.now(),
        500,
      );
      console.log(
        `agent live heap: ${mb(returned)} ${((Date.now() - floodEnd) / 1000).toFixed(1)} s after the flood`,
      );
      expect(returned).toBeLessThan(LIMIT_BYTES);
    },
    (TTL_SECONDS + 40) * 1000,
  );
});
