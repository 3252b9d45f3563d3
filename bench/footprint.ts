import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../deployment/host/package-root.js';
import type { ImplementationName } from '../deployment/implementation/implementation.js';
import { IdentityStack } from '../deployment/stack/identity-stack.js';
import { AdminApi } from '../identity-core/client/admin-api.js';
import { unary } from '../identity-core/client/grpc-call.js';
import type { BatchCreateEntryResponse__Output } from '../identity-core/proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import * as grpc from '@grpc/grpc-js';
import { WorkloadClient, workloadMetadata } from '../identity-core/proto/services.js';
import type { X509SVIDResponse__Output } from '../identity-core/proto/gen/X509SVIDResponse.js';
import { benchDatabase, benchRunDir } from './bench-environment.js';

/**
 * Resident memory of an idle tspire-server and of a tspire-agent serving ENTRIES workload entries to
 * STREAMS open FetchX509SVID streams, while SVIDs rotate at a 30 s TTL for SECONDS. Samples RSS every
 * 10 s; growth is the last sample minus the one a quarter of the way in (after warm-up). Then the same
 * with the real spire-server and spire-agent v1.13.3 (tools/bin) on PostgreSQL, whose figures go in
 * the same line (`server_rss_mb_vs_spire`: bundled / real).
 */
const ENTRIES = Number(process.env.ENTRIES ?? 100);
const STREAMS = Number(process.env.STREAMS ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 120);
const GOAL_MB = 150;
/** `pglite` (the embedded default, in the server process) or `postgres` (a scratch database on the local server). */
const DATASTORE = process.env.DATASTORE ?? 'pglite';
if (DATASTORE !== 'pglite' && DATASTORE !== 'postgres')
  throw new Error('DATASTORE must be pglite or postgres');

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

async function measure(implementation: ImplementationName, datastore: 'pglite' | 'postgres') {
  const run = benchRunDir('sdbf-');
  const database = datastore === 'postgres' ? await benchDatabase('sd_bench_footprint') : undefined;
  const stack = await IdentityStack.create({
    runDir: run.dir,
    x509SvidTtl: '30s',
    syncInterval: '5s',
    logLevel: 'WARN',
    implementation,
    ...(database ? { database: database.choice } : {}),
  });
  const clients: InstanceType<typeof WorkloadClient>[] = [];
  try {
    await stack.startServer();
    const token = await stack.generateToken('spiffe://example.org/footprint/node');
    const admin = new AdminApi(stack.serverSocket);
    const entries = Array.from({ length: ENTRIES }, (_, i) => ({
      spiffeId: { trustDomain: 'example.org', path: `/footprint/workload-${i}` },
      parentId: { trustDomain: 'example.org', path: '/footprint/node' },
      selectors: [{ type: 'unix', value: `uid:${process.getuid!()}` }],
    }));
    for (let i = 0; i < entries.length; i += 100) {
      await unary<BatchCreateEntryResponse__Output>((done) =>
        admin.entry().BatchCreateEntry({ entries: entries.slice(i, i + 100) }, done),
      );
    }
    admin.close();
    await stack.startAgent(token);

    let updates = 0;
    let svidsInLastUpdate = 0;
    const openStream = () =>
      new Promise<void>((resolve) => {
        const client = new WorkloadClient(`unix://${stack.agentSocket}`, grpc.credentials.createInsecure());
        clients.push(client);
        const stream = client.FetchX509SVID({}, workloadMetadata());
        stream.on('data', (response: X509SVIDResponse__Output) => {
          updates++;
          svidsInLastUpdate = response.svids.length;
          resolve();
        });
        stream.on('error', () => resolve());
      });
    const deadline = Date.now() + 60_000;
    while (svidsInLastUpdate < ENTRIES && Date.now() < deadline) {
      await openStream();
      if (svidsInLastUpdate < ENTRIES) await new Promise((r) => setTimeout(r, 1000));
    }
    await Promise.all(Array.from({ length: STREAMS - clients.length }, openStream));

    const samples: { t: number; server: number; agent: number }[] = [];
    const started = Date.now();
    while (Date.now() - started < SECONDS * 1000) {
      await new Promise((r) => setTimeout(r, 10_000));
      samples.push({
        t: (Date.now() - started) / 1000,
        server: rssMb(stack.server!.pid),
        agent: rssMb(stack.agent!.pid),
      });
    }
    const warm = samples[Math.floor(samples.length / 4)]!;
    const last = samples.at(-1)!;
    return {
      bench: 'footprint',
      server_rss_mb: last.server,
      agent_rss_mb: last.agent,
      server_rss_max_mb: Math.max(...samples.map((s) => s.server)),
      agent_rss_max_mb: Math.max(...samples.map((s) => s.agent)),
      server_growth_mb: Number((last.server - warm.server).toFixed(1)),
      agent_growth_mb: Number((last.agent - warm.agent).toFixed(1)),
      goal_mb: GOAL_MB,
      entries: ENTRIES,
      streams: clients.length,
      stream_updates: updates,
      seconds: SECONDS,
      ttl_s: 30,
      datastore,
    };
  } finally {
    for (const client of clients) client.close();
    await stack.stop();
    await database?.drop();
    run.remove();
  }
}

const ours = await measure('tspire', DATASTORE);
if (!existsSync(join(packageRoot(), 'tools', 'bin', 'spire-server'))) {
  console.error('real SPIRE is not built (tools/install.sh spire): the bundled SPIRE alone');
  console.log(JSON.stringify(ours));
} else {
  // Real SPIRE has no embedded datastore without CGO's sqlite3: it always runs on PostgreSQL here.
  const theirs = await measure('spire', 'postgres');
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  console.log(
    JSON.stringify({
      ...ours,
      spire_server_rss_mb: theirs.server_rss_mb,
      spire_agent_rss_mb: theirs.agent_rss_mb,
      spire_server_growth_mb: theirs.server_growth_mb,
      spire_agent_growth_mb: theirs.agent_growth_mb,
      spire_datastore: theirs.datastore,
      server_rss_mb_vs_spire: ratio(ours.server_rss_mb, theirs.server_rss_mb),
      agent_rss_mb_vs_spire: ratio(ours.agent_rss_mb, theirs.agent_rss_mb),
    }),
  );
}
