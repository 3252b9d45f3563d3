import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { attestWithJoinToken } from '../identity-core/agent/node-attestation.js';
import { agentIdentityFrom, identityPem } from '../identity-core/agent/synchronizer.js';
import { AdminApi } from '../identity-core/client/admin-api.js';
import { unary } from '../identity-core/client/grpc-call.js';
import type { BatchCreateEntryResponse__Output } from '../identity-core/proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import type { GetAuthorizedEntriesResponse__Output } from '../identity-core/proto/gen/spire/api/server/entry/v1/GetAuthorizedEntriesResponse.js';
import type { Bundle__Output } from '../identity-core/proto/gen/spire/api/types/Bundle.js';
import type { JoinToken__Output } from '../identity-core/proto/gen/spire/api/types/JoinToken.js';
import { parsePemCertificates } from '../identity-core/spiffe/pem.js';
import { ServerConnection, call, type ServerClients } from '../identity-core/transport/server-connection.js';
import { packageRoot } from '../deployment/host/package-root.js';
import type { ImplementationName } from '../deployment/implementation/implementation.js';
import { IdentityStack } from '../deployment/stack/identity-stack.js';
import { benchDatabase, benchRunDir } from './bench-environment.js';

/**
 * Sync latency and server CPU against the number of agents: for each A in AGENTS_LIST, one
 * tspire-server and then one real spire-server v1.13.3 (tools/bin; its attestation rate limit off, as
 * every simulated agent dials from 127.0.0.1) on PostgreSQL with A agents (simulated in this process, each attested with its own
 * join token over its own mTLS connection) holding ENTRIES entries each, every agent syncing every
 * SYNC_INTERVAL_S as the real agent does (GetBundle, then GetAuthorizedEntries). Measures BENCH_SECONDS
 * of steady load and prints one JSON line per A: the bundled server's figures, real SPIRE's as
 * `spire_*`, and `ratio_vs_spire`, the bundled server's CPU over real SPIRE's for the same load.
 *
 * Each A gets a fresh server and database rather than a subset of the largest set-up: the server's
 * entry cache reloads all entries every 5 s, so idle agents' entries would inflate the CPU of small A.
 */
function positiveInt(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer: "${text}"`);
  return value;
}

const AGENTS_LIST = (process.env.AGENTS_LIST ?? '100,1000,5000')
  .split(',')
  .map((a) => positiveInt('AGENTS_LIST', a.trim()));
const ENTRIES = positiveInt('ENTRIES', process.env.ENTRIES ?? '10');
const SECONDS = positiveInt('BENCH_SECONDS', process.env.BENCH_SECONDS ?? '30');
const SYNC_INTERVAL_S = positiveInt('SYNC_INTERVAL_S', process.env.SYNC_INTERVAL_S ?? '5');

const TRUST_DOMAIN = 'example.org';
/** entry-service's MAX_BATCH: the most entries one BatchCreateEntry accepts. */
const ENTRY_BATCH = 500;
const ENTRY_CALLS_IN_FLIGHT = 2;
const TOKEN_CALLS_IN_FLIGHT = 20;
const ATTESTATIONS_IN_FLIGHT = 20;
const WARMUP_SYNCS_IN_FLIGHT = 50;
/** Setup of thousands of agents takes minutes; the tokens must outlive it. */
const TOKEN_TTL_S = 3600;
/** Slightly more than the server's entry cache reload interval (5 s). */
const CACHE_RELOAD_WAIT_MS = 6000;
/** monitorEventLoopDelay samples with this period and records it with the lag, so it is subtracted. */
const LOOP_RESOLUTION_MS = 10;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of a process, in clock ticks; fields counted after the parenthesised command name. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return Math.round(kb / 1024);
}

/** Nearest-rank percentile of ascending values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Runs work(0..count-1) with at most `limit` calls in flight. */
async function inParallel(count: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

/** One agent sync as the synchronizer does it; resolves with the number of authorized entries. */
async function sync(clients: ServerClients): Promise<number> {
  await call<Bundle__Output>((o, done) => clients.bundle.GetBundle({}, o, done));
  const response = await call<GetAuthorizedEntriesResponse__Output>((o, done) =>
    clients.entry.GetAuthorizedEntries({}, o, done),
  );
  return response.entries.length;
}

const nodePath = (a: number) => `/bench/node-${a}`;
const secondsSince = (start: number) => round2((performance.now() - start) / 1000);

/** Clean-up of the A being measured, also run when the benchmark is interrupted. */
let cleanupCurrent: (() => Promise<void>) | undefined;
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    console.error(`${signal}: stopping the server and dropping the database`);
    void (cleanupCurrent?.() ?? Promise.resolve()).finally(() => process.exit(code));
  });
}

async function measure(
  implementation: ImplementationName,
  agentCount: number,
): Promise<Record<string, number | string>> {
  const log = (message: string) => console.error(`[sync-scale ${implementation} A=${agentCount}] ${message}`);
  const run = benchRunDir('sdss-');
  const database = await benchDatabase('sd_bench_sync_scale');
  const connections: ServerConnection[] = [];
  let stack: IdentityStack | undefined;
  let cleanup: Promise<void> | undefined;
  cleanupCurrent = () =>
    (cleanup ??= (async () => {
      for (const connection of connections) connection.close();
      await stack?.stop();
      await database.drop();
      run.remove();
    })());
  try {
    const setupStarted = performance.now();
    stack = await IdentityStack.create({
      runDir: run.dir,
      database: database.choice,
      logLevel: 'WARN',
      implementation,
      ...(implementation === 'spire' ? { rateLimits: { attestation: false, signing: true } } : {}),
    });
    await stack.startServer();
    await stack.writeBootstrapBundle();
    const serverPid = stack.server!.pid;
    const roots = parsePemCertificates(readFileSync(stack.bundlePath));

    const admin = new AdminApi(stack.serverSocket);
    const agentApi = admin.agent();
    const entryApi = admin.entry();
    let phase = performance.now();
    const tokens: string[] = [];
    // Each token comes with the alias entry spiffe://example.org/bench/node-<a>, the entries' parent.
    await inParallel(agentCount, TOKEN_CALLS_IN_FLIGHT, async (a) => {
      const token = await unary<JoinToken__Output>((done) =>
        agentApi.CreateJoinToken(
          { ttl: TOKEN_TTL_S, agentId: { trustDomain: TRUST_DOMAIN, path: nodePath(a) } },
          done,
        ),
      );
      tokens[a] = token.value;
    });
    log(`${agentCount} join tokens in ${secondsSince(phase)} s`);

    phase = performance.now();
    const entries = Array.from({ length: agentCount * ENTRIES }, (_, i) => {
      const a = Math.floor(i / ENTRIES);
      const e = i % ENTRIES;
      return {
        spiffeId: { trustDomain: TRUST_DOMAIN, path: `/bench/agent-${a}/workload-${e}` },
        parentId: { trustDomain: TRUST_DOMAIN, path: nodePath(a) },
        selectors: [{ type: 'unix', value: `uid:${10_000 + e}` }],
      };
    });
    await inParallel(Math.ceil(entries.length / ENTRY_BATCH), ENTRY_CALLS_IN_FLIGHT, async (b) => {
      const batch = entries.slice(b * ENTRY_BATCH, (b + 1) * ENTRY_BATCH);
      const created = await unary<BatchCreateEntryResponse__Output>((done) =>
        entryApi.BatchCreateEntry({ entries: batch }, done),
      );
      const failed = created.results.filter((r) => r.status?.code !== 0);
      if (failed.length > 0)
        throw new Error(`${failed.length} entries not created: ${failed[0]!.status?.message}`);
    });
    admin.close();
    log(`${entries.length} entries in ${secondsSince(phase)} s`);

    phase = performance.now();
    const agents: ServerClients[] = [];
    await inParallel(agentCount, ATTESTATIONS_IN_FLIGHT, async (a) => {
      const connection = new ServerConnection(`127.0.0.1:${stack!.serverPort}`, TRUST_DOMAIN);
      connections.push(connection);
      const attested = await attestWithJoinToken(connection, roots, tokens[a]!);
      agents[a] = connection.clients(
        roots,
        identityPem(
          agentIdentityFrom(attested.spiffeId, attested.certificateChain, attested.privateKeyPkcs8),
        ),
      );
    });
    log(`${agentCount} agents attested in ${secondsSince(phase)} s`);

    await sleep(CACHE_RELOAD_WAIT_MS);
    // One unmeasured sync per agent opens its mTLS connection (a real agent keeps it open) and checks
    // that the server hands out every entry before any latency counts.
    phase = performance.now();
    await inParallel(agentCount, WARMUP_SYNCS_IN_FLIGHT, async (a) => {
      const count = await sync(agents[a]!);
      if (count !== ENTRIES + 1)
        throw new Error(`agent ${a} got ${count} authorized entries, expected ${ENTRIES + 1}`);
    });
    const setupSeconds = secondsSince(setupStarted);
    log(`warm-up syncs in ${secondsSince(phase)} s; setup took ${setupSeconds} s`);

    const intervalMs = SYNC_INTERVAL_S * 1000;
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loopDelay.enable();
    const serverTicksStart = cpuTicks(serverPid);
    const clientCpuStart = process.cpuUsage();
    const started = performance.now();
    const end = started + SECONDS * 1000;
    log(`measuring for ${SECONDS} s`);
    await Promise.all(
      agents.map(async (clients, a) => {
        // First syncs spread uniformly over one interval, so the load is steady rather than in bursts.
        await sleep((a / agentCount) * intervalMs);
        while (performance.now() < end) {
          const syncStarted = performance.now();
          try {
            const count = await sync(clients);
            if (count !== ENTRIES + 1) throw new Error(`got ${count} authorized entries`);
            latencies.push(performance.now() - syncStarted);
          } catch (error) {
            errors++;
            firstError ??= (error as Error).message;
          }
          // As the synchronizer: the next sync an interval after this one ends, unless the window does first.
          if (performance.now() + intervalMs >= end) break;
          await sleep(intervalMs);
        }
      }),
    );
    const wallSeconds = (performance.now() - started) / 1000;
    const serverTicks = cpuTicks(serverPid) - serverTicksStart;
    const clientCpu = process.cpuUsage(clientCpuStart);
    loopDelay.disable();
    if (firstError) log(`${errors} failed syncs; first: ${firstError}`);

    latencies.sort((x, y) => x - y);
    return {
      bench: 'sync-scale',
      agents: agentCount,
      entries_per_agent: ENTRIES,
      sync_interval_s: SYNC_INTERVAL_S,
      syncs: latencies.length,
      syncs_per_s: round2(latencies.length / wallSeconds),
      sync_p50_ms: round2(percentile(latencies, 50)),
      sync_p99_ms: round2(percentile(latencies, 99)),
      sync_max_ms: round2(latencies.at(-1) ?? NaN),
      server_cpu_percent: round2((serverTicks / CLK_TCK / wallSeconds) * 100),
      server_rss_mb: rssMb(serverPid),
      // Whether this one process simulating every agent was itself the bottleneck.
      client_cpu_percent: round2(((clientCpu.user + clientCpu.system) / 1e6 / wallSeconds) * 100),
      client_loop_p99_ms: round2(loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
      client_rss_mb: Math.round(process.memoryUsage().rss / 1024 / 1024),
      errors,
      seconds: round2(wallSeconds),
      setup_seconds: setupSeconds,
      datastore: database.choice.type,
      cores: cpus().length,
    };
  } finally {
    await cleanupCurrent();
    cleanupCurrent = undefined;
  }
}

const spireBuilt = existsSync(join(packageRoot(), 'tools', 'bin', 'spire-server'));
if (!spireBuilt) console.error('real SPIRE is not built (tools/install.sh spire): the bundled server alone');
for (const agentCount of AGENTS_LIST) {
  const ours = await measure('tspire', agentCount);
  if (!spireBuilt) {
    console.log(JSON.stringify(ours));
    continue;
  }
  const theirs = await measure('spire', agentCount);
  console.log(
    JSON.stringify({
      ...ours,
      spire_syncs_per_s: theirs.syncs_per_s,
      spire_sync_p50_ms: theirs.sync_p50_ms,
      spire_sync_p99_ms: theirs.sync_p99_ms,
      spire_server_cpu_percent: theirs.server_cpu_percent,
      spire_server_rss_mb: theirs.server_rss_mb,
      spire_errors: theirs.errors,
      ratio_vs_spire: round2(Number(ours.server_cpu_percent) / Number(theirs.server_cpu_percent)),
      sync_p99_ms_vs_spire: round2(Number(ours.sync_p99_ms) / Number(theirs.sync_p99_ms)),
    }),
  );
}
