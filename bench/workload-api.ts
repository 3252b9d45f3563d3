import * as grpc from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IdentityStack } from '../deployment/stack/identity-stack.js';
import { packageRoot } from '../deployment/host/package-root.js';
import type { ImplementationName } from '../deployment/implementation/implementation.js';
import { WorkloadClient, workloadMetadata } from '../identity-core/proto/services.js';
import { benchDatabase, benchRunDir } from './bench-environment.js';

/**
 * FetchX509SVID first-response latency from 1, 10 and 100 concurrent clients, against tspire-agent and,
 * in the same run, against a real spire-agent v1.13.3 attached to a real spire-server (tools/bin),
 * both serving the same entry. Each client opens a connection, waits for its first message, and
 * leaves. Prints one JSON line per implementation and concurrency; the last carries p99_ratio_vs_spire.
 */
const CONCURRENCY = [1, 10, 100];
const SAMPLES = Number(process.env.SAMPLES ?? 300);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function firstResponseMs(socket: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const client = new WorkloadClient(`unix://${socket}`, grpc.credentials.createInsecure());
    const stream = client.FetchX509SVID({}, workloadMetadata());
    stream.once('data', () => {
      const elapsed = performance.now() - started;
      stream.cancel();
      client.close();
      resolve(elapsed);
    });
    stream.once('error', (error: grpc.ServiceError) => {
      client.close();
      if (error.code !== grpc.status.CANCELLED) reject(error);
    });
    stream.once('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) reject(new Error('stream ended without an SVID'));
    });
  });
}

async function waitServed(socket: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await firstResponseMs(socket);
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`no SVID served within 60 s: ${(error as Error).message}`, { cause: error });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function measure(implementation: ImplementationName): Promise<Map<number, number>> {
  const run = benchRunDir(implementation === 'spire' ? 'sdws-' : 'sdwt-');
  // Both on PostgreSQL: the pinned SPIRE build has no sqlite3, and the datastore is not on this path anyway.
  const database = await benchDatabase('sd_bench_workload');
  const stack = await IdentityStack.create({
    runDir: run.dir,
    implementation,
    database: database.choice,
    logLevel: 'WARN',
    syncInterval: '5s',
  });
  const p99s = new Map<number, number>();
  try {
    await stack.startServer();
    const token = await stack.generateToken('spiffe://example.org/bench/node');
    const created = await stack.serverCli([
      'entry',
      'create',
      '-parentID',
      'spiffe://example.org/bench/node',
      '-spiffeID',
      'spiffe://example.org/bench/workload',
      '-selector',
      `unix:uid:${process.getuid!()}`,
    ]);
    if (created.code !== 0) throw new Error(`entry create failed: ${created.stderr}`);
    await stack.startAgent(token);
    await waitServed(stack.agentSocket);
    for (const clients of CONCURRENCY) {
      const samples: number[] = [];
      while (samples.length < SAMPLES) {
        samples.push(
          ...(await Promise.all(Array.from({ length: clients }, () => firstResponseMs(stack.agentSocket)))),
        );
      }
      samples.sort((a, b) => a - b);
      const p99 = percentile(samples, 99);
      p99s.set(clients, p99);
      console.log(
        JSON.stringify({
          bench: 'workload-api',
          implementation: implementation === 'spire' ? 'spire-agent v1.13.3' : 'tspire-agent',
          clients,
          samples: samples.length,
          p50_ms: Number(percentile(samples, 50).toFixed(2)),
          p99_ms: Number(p99.toFixed(2)),
        }),
      );
    }
  } finally {
    await stack.stop();
    await database.drop();
    run.remove();
  }
  return p99s;
}

const ours = await measure('tspire');
if (!existsSync(join(packageRoot(), 'tools', 'bin', 'spire-agent'))) {
  console.error('real SPIRE is not built (tools/install.sh spire); no comparison');
  process.exit(1);
}
const theirs = await measure('spire');
console.log(
  JSON.stringify({
    bench: 'workload-api',
    clients: 100,
    tspire_p99_ms: Number(ours.get(100)!.toFixed(2)),
    spire_p99_ms: Number(theirs.get(100)!.toFixed(2)),
    p99_ratio_vs_spire: Number((ours.get(100)! / theirs.get(100)!).toFixed(2)),
  }),
);
