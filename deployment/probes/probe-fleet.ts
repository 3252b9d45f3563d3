/**
 * The probes of a deployment: one detached probe process per workload slot, in `<runDir>/probes/<n>`
 * (pid, log, `samples.jsonl`, `svids/`), each dialling the next workload of its server group (a
 * ring; a workload alone in its group dials itself). Ports are chosen once and kept in
 * `<runDir>/probes/ports.json`, so a worker that starts after a crash adopts the same probes.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProbeSample } from './probe-sample.js';
import type { WorkloadSlot } from '../workload-slot.js';
import { freePort } from '../host/free-port.js';
import { findProcess, startProcess } from '../host/managed-process.js';
import { packageRoot } from '../host/package-root.js';
import { pollUntilDone } from '../host/poll.js';
import type { SvidCredentials } from './probe-handshake.js';
import { readBundleFile, readSvidFile } from './probe-svid-store.js';

/** What the fleet needs of a deployment (a `Deployment` is one). */
export interface ProbedDeployment {
  plan: { runDir: string };
  workloads(): Promise<
    (Pick<WorkloadSlot, 'group' | 'spiffeId' | 'socket'> & Pick<Partial<WorkloadSlot>, 'gid'>)[]
  >;
}

export interface ProbeEndpoint {
  spiffeId: string;
  group: string;
  /** The agent socket the probe fetches from. */
  socket: string;
  /** The group id the probe runs under (its workload's); undefined: the worker's. */
  gid?: number | undefined;
  dir: string;
  listenPort: number;
  peer: { spiffeId: string; listenPort: number };
  audience: string;
  samplesFile: string;
  svidDir: string;
  /** An SVID this probe received, by serial, as it stored it; undefined if it never did. */
  svidFiles(serial: string): SvidCredentials | undefined;
  /** The X.509 bundle (PEM) the probe trusts now. */
  currentBundle(): Promise<string>;
}

const PROCESS_NAME = 'probe';
const START_TIMEOUT_MS = 15_000;

function probesDir(deployment: { plan: { runDir: string } }): string {
  return join(deployment.plan.runDir, 'probes');
}

/** Listen ports by SPIFFE ID: those recorded, plus new ones for slots that have none yet. */
async function listenPorts(dir: string, spiffeIds: string[]): Promise<Record<string, number>> {
  const file = join(dir, 'ports.json');
  const ports = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>) : {};
  const missing = spiffeIds.filter((id) => ports[id] === undefined);
  if (missing.length === 0) return ports;
  for (const id of missing) ports[id] = await freePort();
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(ports, null, 2));
  renameSync(`${file}.tmp`, file);
  return ports;
}

/** Where each slot's probe lives and whom it dials; ports fixed on first use. */
export async function probeEndpoints(deployment: ProbedDeployment): Promise<ProbeEndpoint[]> {
  const slots = await deployment.workloads();
  const ports = await listenPorts(
    probesDir(deployment),
    slots.map((s) => s.spiffeId),
  );
  return slots.map((slot, index) => {
    const group = slots.filter((s) => s.group === slot.group);
    const peer = group[(group.indexOf(slot) + 1) % group.length]!;
    const dir = join(probesDir(deployment), String(index));
    const svidDir = join(dir, 'svids');
    return {
      spiffeId: slot.spiffeId,
      group: slot.group,
      socket: slot.socket,
      gid: slot.gid,
      dir,
      listenPort: ports[slot.spiffeId]!,
      peer: { spiffeId: peer.spiffeId, listenPort: ports[peer.spiffeId]! },
      // A JWT-SVID for calling the peer, as a service would ask for one.
      audience: peer.spiffeId,
      samplesFile: join(dir, 'samples.jsonl'),
      svidDir,
      svidFiles: (serial) => readSvidFile(svidDir, serial),
      currentBundle: async () => {
        const bundle = readBundleFile(svidDir);
        if (bundle === undefined) throw new Error(`the probe of ${slot.spiffeId} has no bundle yet`);
        return bundle;
      },
    };
  });
}

async function startProbe(endpoint: ProbeEndpoint): Promise<void> {
  mkdirSync(endpoint.dir, { recursive: true });
  // The log is appended to across restarts: only what this start writes counts.
  const logFile = join(endpoint.dir, `${PROCESS_NAME}.log`);
  const logBefore = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
  const script = join(packageRoot(), 'dist', 'deployment', 'probes', 'probe-main.js');
  const probe = startProcess(
    endpoint.dir,
    PROCESS_NAME,
    process.execPath,
    [
      script,
      '--socket',
      endpoint.socket,
      '--spiffe-id',
      endpoint.spiffeId,
      '--listen-port',
      String(endpoint.listenPort),
      '--peer-port',
      String(endpoint.peer.listenPort),
      '--peer-id',
      endpoint.peer.spiffeId,
      '--samples',
      endpoint.samplesFile,
      '--audience',
      endpoint.audience,
      '--svid-dir',
      endpoint.svidDir,
    ],
    {},
    // Its workload's own gid, which its agent attests it by; it keeps uid 0, so it still writes its dir.
    endpoint.gid,
  );
  await pollUntilDone(
    async () => {
      if (!probe.isRunning())
        throw new Error(
          `the probe of ${endpoint.spiffeId} exited during start:\n${probe.log().slice(logBefore)}`,
        );
      return probe.log().slice(logBefore).includes('"msg":"listening"') ? undefined : 'not listening';
    },
    Date.now() + START_TIMEOUT_MS,
    () =>
      `the probe of ${endpoint.spiffeId} did not listen within ${START_TIMEOUT_MS} ms:\n${probe.log().slice(logBefore)}`,
    100,
  );
}

/**
 * One probe per workload slot running: adopted when its pid file names a live probe, else started
 * (and waited for until it listens). Safe to repeat.
 */
export async function ensureProbes(
  deployment: ProbedDeployment,
): Promise<{ started: number; adopted: number }> {
  const endpoints = await probeEndpoints(deployment);
  const missing = endpoints.filter((e) => !findProcess(e.dir, PROCESS_NAME)?.isRunning());
  // Started side by side: one after another, a Node start each, they took seconds on a demo.
  await Promise.all(missing.map(startProbe));
  return { started: missing.length, adopted: endpoints.length - missing.length };
}

/** Every probe of the deployment stopped (whatever slots it has now); safe to repeat. */
export async function stopProbes(deployment: { plan: { runDir: string } }): Promise<void> {
  const dir = probesDir(deployment);
  if (!existsSync(dir)) return;
  await Promise.all(
    readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => findProcess(join(dir, entry.name), PROCESS_NAME)?.stop()),
  );
}

/**
 * Every probe's samples taken at or after `since`, in time order. A line cut short (a probe killed
 * mid-write) is skipped; every whole line is read.
 */
export function readSamples(deployment: { plan: { runDir: string } }, since = -Infinity): ProbeSample[] {
  const dir = probesDir(deployment);
  if (!existsSync(dir)) return [];
  const samples: ProbeSample[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = join(dir, entry.name, 'samples.jsonl');
    if (!entry.isDirectory() || !existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      let sample: ProbeSample;
      try {
        sample = JSON.parse(line) as ProbeSample;
      } catch {
        continue;
      }
      if (sample.at >= since) samples.push(sample);
    }
  }
  return samples.sort((a, b) => a.at - b.at);
}
