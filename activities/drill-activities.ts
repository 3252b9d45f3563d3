import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Deployment } from '../deployment/deployment.js';
import { signingUntil } from '../deployment/authority-rotation.js';
import { ensureWatchdog } from '../deployment/lease/fault-watchdog.js';
import { keepLogs } from '../deployment/stack/kept-logs.js';
import type { FaultSpec } from '../deployment/faults/fault-spec.js';
import { FaultRefused, type FaultResolution } from '../deployment/faults/fault.js';
import {
  confirmFault,
  healFault,
  injectFault,
  resolveFault,
  verifyHealed,
} from '../deployment/faults/fault-lifecycle.js';
import { healedBy, renewLease } from '../deployment/lease/fault-lease.js';
import {
  prepareRestore,
  registeredAfterBackup,
  removeRestoreFiles,
  restoreFindings,
  withdrawLaterRegistrations,
} from '../deployment/faults/db-restore.js';
import { entryCacheReloadFailures } from '../deployment/faults/entry-cache-reloads.js';
import { ensureProbes, probeEndpoints, readSamples } from '../deployment/probes/probe-fleet.js';
import { handshake, type SvidCredentials } from '../deployment/probes/probe-handshake.js';
import { ensureResultsStore, withResults } from '../results/results-store.js';
import { heartbeating } from './heartbeating.js';
import type { DrillRecord, InjectionRecord, TimeWindow } from '../scenarios/drill-record.js';
import {
  cappedGroups,
  defaultTolerance,
  drillPolicy,
  planWorkloads,
  type FaultReach,
  outageSeconds,
  predictUnknownHeld,
  type DrillPlanView,
  type PlannedWorkload,
} from '../scenarios/drill-plan.js';
import {
  judgeDrill,
  predictHeld,
  steadyProblems,
  stopConditionHolds,
  unrecovered,
  type DrillWindows,
  type ForcedVerdict,
} from '../scenarios/judge.js';
import { svidsByWorkload } from '../scenarios/observed-identity.js';
import type { Scenario, StopCondition } from '../scenarios/scenario.js';
import type { OutageClass } from '../scenarios/ttl-model.js';

const POLL_MS = 500;
const HOUR = 3_600_000;

function badInput(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'BadInput');
}

async function sleep(ms: number): Promise<void> {
  await Context.current().sleep(ms);
}

/** Up to when (ms) a downstream's server can sign once cut off from its upstream. */
async function signingCaNotAfter(deployment: Deployment, group: string): Promise<number | undefined> {
  const stack = (await deployment.identityStacks()).downstreams[group];
  return stack ? signingUntil(stack.admin()) : undefined;
}

async function plannedWorkloads(deployment: Deployment, fault: FaultSpec, reach: FaultReach) {
  const slots = deployment.workloadIdentities();
  const caps: Record<string, number | undefined> = {};
  for (const group of cappedGroups(slots, fault, reach))
    caps[group] = await signingCaNotAfter(deployment, group);
  return planWorkloads(slots, fault, reach, caps);
}

/** Where the upstream agent's pre-fault SVID is kept for a revocation replay. */
const agentSnapshotPath = (deployment: Deployment, runId: string) =>
  join(deployment.plan.runDir, 'faults', `${runId}.agent-svid.json`);

/**
 * Copies the first upstream agent's SVID and key before a CA compromise (once: a retry keeps the
 * first), and records whether a peer accepts it now, so that a refusal after the revocation means
 * something.
 */
async function saveAgentSnapshot(deployment: Deployment, runId: string): Promise<void> {
  const path = agentSnapshotPath(deployment, runId);
  if (existsSync(path)) return;
  const upstream = await deployment.stack('upstream');
  const stored = await upstream.implementation.storedAgentIdentity(upstream.agentDataDir(0));
  if (!stored) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(
    `${path}.tmp`,
    JSON.stringify({
      svid: stored.chain.map((c) => c.toString('base64')),
      key: stored.key.toString('base64'),
    }),
  );
  const snapshot = readAgentSnapshot(deployment, runId, `${path}.tmp`);
  const peer = (await probeEndpoints(deployment)).find((e) => e.group === 'upstream');
  const control =
    snapshot && peer
      ? await handshake({
          ...snapshot.credentials,
          bundle: await peer.currentBundle(),
          port: peer.listenPort,
          expectedPeerId: peer.spiffeId,
        })
      : { ok: false, error: 'no upstream probe to shake hands with' };
  writeFileSync(`${path}.control.json`, JSON.stringify(control));
  renameSync(`${path}.tmp`, path);
}

function readAgentSnapshot(
  deployment: Deployment,
  runId: string,
  path = agentSnapshotPath(deployment, runId),
):
  | {
      what: string;
      credentials: SvidCredentials;
      notAfter: number;
      control?: { ok: boolean; error?: string };
    }
  | undefined {
  if (!existsSync(path)) return undefined;
  const controlFile = `${path}.control.json`;
  const stored = JSON.parse(readFileSync(path, 'utf8')) as { svid: string[]; key: string };
  const pem = (label: string, base64: string) =>
    `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
  const leaf = new X509Certificate(Buffer.from(stored.svid[0]!, 'base64'));
  return {
    what: `the upstream agent's pre-fault SVID ${leaf.serialNumber}`,
    credentials: {
      chainPem: stored.svid.map((c) => pem('CERTIFICATE', c)).join(''),
      keyPem: pem('PRIVATE KEY', stored.key),
    },
    notAfter: Date.parse(leaf.validTo),
    ...(existsSync(controlFile)
      ? { control: JSON.parse(readFileSync(controlFile, 'utf8')) as { ok: boolean; error?: string } }
      : {}),
  };
}

/**
 * Temporal activities of a drill, over deployment/ (faults, probes) and the results store. Each is
 * idempotent: inject and heal are ensure-operations, probes are adopted, results are replaced.
 */
export const drillActivities = {
  async prepareDrill(input: {
    runId: string;
    deploymentId: string;
    fault: FaultSpec;
    outage: OutageClass;
    scenario: Scenario;
  }): Promise<DrillPlanView> {
    const deployment = await Deployment.open(input.deploymentId).catch((error: Error) => {
      throw badInput(error.message);
    });
    let resolved: FaultResolution;
    try {
      resolved = resolveFault(deployment, input.fault);
    } catch (error) {
      if (error instanceof FaultRefused) throw ApplicationFailure.nonRetryable(error.message, 'FaultRefused');
      throw error;
    }
    Context.current().heartbeat('starting probes and the fault watchdog');
    await ensureProbes(deployment);
    // Started here, while the steady state is still to be waited for, rather than inside the injection.
    await ensureWatchdog(deployment);
    const policy = drillPolicy(deployment.topology);
    const seconds = outageSeconds(input.scenario, input.outage, policy);
    const workloads = await plannedWorkloads(deployment, input.fault, resolved);
    const now = Date.now();
    const window = { start: now, end: now + seconds * 1000 };
    const predictedLosses = workloads.filter(
      (w) => predictUnknownHeld(w, window, policy).loss !== 'never',
    ).length;
    return {
      outageSeconds: seconds,
      policy,
      tolerance: defaultTolerance(policy),
      targets: resolved.targets,
      workloads,
      predictedLosses,
    };
  },

  /**
   * A probe under every workload, started or adopted, and waited for until each holds an SVID and
   * has shaken hands with its peer: spin-up ends with its workloads observed, so the first drill's
   * steady state is measured from its first second rather than from the probes' start.
   */
  async startProbes(input: {
    deploymentId: string;
    timeoutMs?: number;
  }): Promise<{ started: number; adopted: number }> {
    const deployment = await Deployment.open(input.deploymentId).catch((error: Error) => {
      throw badInput(error.message);
    });
    const calledAt = Date.now();
    const fleet = await ensureProbes(deployment);
    const workloads = (await deployment.workloads()).map((w) => w.spiffeId);
    const deadline = calledAt + (input.timeoutMs ?? 60_000);
    for (;;) {
      const samples = readSamples(deployment, calledAt - HOUR);
      const waiting = workloads.filter(
        (w) =>
          !samples.some((s) => s.workload === w && s.kind === 'svid') ||
          !samples.some((s) => s.workload === w && s.kind === 'handshake' && s.ok && s.at >= calledAt),
      );
      Context.current().heartbeat(waiting[0] ?? 'observed');
      if (waiting.length === 0) return fleet;
      if (Date.now() > deadline)
        throw new Error(
          `no SVID or no successful handshake from the probe of ${waiting.join(', ')} within ${(deadline - calledAt) / 1000} s`,
        );
      await sleep(POLL_MS);
    }
  },

  async steadyState(input: {
    deploymentId: string;
    seconds: number;
    /** The window may not start before this (after a recovery: steady again, not steady in the past). */
    notBefore?: number;
    /** The window may not end before this: expectations measured from the heal get their whole span. */
    notUntil?: number;
    timeoutMs?: number;
  }): Promise<{ ok: boolean; window: TimeWindow; detail: string }> {
    const deployment = await Deployment.open(input.deploymentId);
    const workloads = (await deployment.workloads()).map((w) => w.spiffeId);
    const deadline = Math.max(Date.now(), input.notUntil ?? 0) + (input.timeoutMs ?? 90_000);
    for (;;) {
      const end = Date.now();
      const window = { start: end - input.seconds * 1000, end };
      const early = input.notBefore !== undefined && window.start < input.notBefore;
      const short = input.notUntil !== undefined && end < input.notUntil;
      const problems = early
        ? [`steady state is measured from ${new Date(input.notBefore!).toISOString()} on`]
        : short
          ? [`watching until ${new Date(input.notUntil!).toISOString()}`]
          : steadyProblems(readSamples(deployment, window.start - HOUR), workloads, window);
      Context.current().heartbeat(problems[0] ?? 'steady');
      if (problems.length === 0)
        return { ok: true, window, detail: `${workloads.length} workload(s) steady` };
      if (end > deadline) return { ok: false, window, detail: problems.join('; ') };
      await sleep(POLL_MS);
    }
  },

  /**
   * What the fault needs before the steady state: db-restore's backup, and the identities registered
   * after it. `backupTakenAt` is when the backup began, which the drill's wait before the loss counts from.
   */
  async prepareFault(input: {
    deploymentId: string;
    runId: string;
    fault: FaultSpec;
  }): Promise<{ backupTakenAt?: number; detail?: string }> {
    if (input.fault.kind !== 'db-restore') return {};
    const deployment = await Deployment.open(input.deploymentId);
    const prepared = await heartbeating(
      'taking the backup',
      prepareRestore(deployment, input.runId, input.fault),
    );
    return {
      backupTakenAt: prepared.takenAt,
      detail: `backup of ${(prepared.bytes / 1e6).toFixed(1)} MB taken; registered after it: ${prepared.registered.join(', ') || 'nothing'}`,
    };
  },

  async injectFault(input: {
    deploymentId: string;
    runId: string;
    fault: FaultSpec;
    leaseMs: number;
  }): Promise<{ at: number; detail: string; workloads?: PlannedWorkload[] }> {
    const deployment = await Deployment.open(input.deploymentId);
    if (input.fault.kind === 'ca-compromise') await saveAgentSnapshot(deployment, input.runId);
    // The intermediates that cap a cut-off downstream, as they are now: since planning, a downstream
    // may have prepared or activated another (a restore's wait before the loss can be a minute).
    const workloads = await plannedWorkloads(
      deployment,
      input.fault,
      resolveFault(deployment, input.fault),
    ).catch(() => undefined);
    const detail = await heartbeating(
      'injecting',
      injectFault(deployment, input.runId, input.fault, input.leaseMs),
    );
    return {
      at: Date.now(),
      detail: String(detail ?? input.fault.kind),
      ...(workloads ? { workloads } : {}),
    };
  },

  /** Polls for the fault's effect, seen from outside, for up to 15 s. */
  async confirmFault(input: {
    deploymentId: string;
    runId: string;
    fault: FaultSpec;
  }): Promise<{ injected: boolean; detail: string }> {
    const deployment = await Deployment.open(input.deploymentId);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const seen = await confirmFault(deployment, input.fault);
      Context.current().heartbeat(seen.detail);
      if (seen.injected || Date.now() > deadline) return seen;
      await renewLease(deployment, input.runId, 20_000);
      await sleep(POLL_MS);
    }
  },

  async renewLease(input: { deploymentId: string; runId: string; leaseMs: number }): Promise<void> {
    await renewLease(await Deployment.open(input.deploymentId), input.runId, input.leaseMs);
  },

  /** A stop condition that holds now, in words, or nothing. */
  async checkStop(input: {
    deploymentId: string;
    since: number;
    plan: DrillPlanView;
    stopConditions: StopCondition[];
  }): Promise<string | undefined> {
    if (input.stopConditions.length === 0) return undefined;
    const deployment = await Deployment.open(input.deploymentId);
    return stopConditionHolds({
      samples: readSamples(deployment, input.since - HOUR),
      conditions: input.stopConditions,
      plan: input.plan,
      since: input.since,
      now: Date.now(),
    });
  },

  /** Heals (idempotent); `at` is when the fault ended: now, or earlier if the watchdog healed it. */
  async healFault(input: {
    deploymentId: string;
    runId: string;
    fault: FaultSpec;
  }): Promise<{ at: number; detail: string }> {
    const deployment = await Deployment.open(input.deploymentId);
    const before = healedBy(deployment, input.runId);
    const healed = await heartbeating('healing', healFault(deployment, input.runId, input.fault));
    if (before)
      return { at: before.at, detail: `healed by the ${before.by} at ${new Date(before.at).toISOString()}` };
    return { at: healed.restoredAt, detail: healed.detail };
  },

  async verifyHealed(input: {
    deploymentId: string;
    fault: FaultSpec;
  }): Promise<{ healed: boolean; detail: string }> {
    const deployment = await Deployment.open(input.deploymentId);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const seen = await verifyHealed(deployment, input.fault);
      Context.current().heartbeat(seen.detail);
      if (seen.healed || Date.now() > deadline) return seen;
      await sleep(POLL_MS);
    }
  },

  /**
   * Waits until every workload holds a valid SVID and has shaken hands since `since`, or until
   * well past the latest recovery the model allows.
   */
  async waitRecovered(input: {
    deploymentId: string;
    since: number;
    plan: DrillPlanView;
    /** When the fault began: given, the answer carries the model's prediction over the fault as held. */
    faultStart?: number;
  }): Promise<{ ok: boolean; at: number; detail: string; predictedLosses?: number }> {
    const deployment = await Deployment.open(input.deploymentId);
    const policy = input.plan.policy;
    const predictedLosses = () => {
      if (input.faultStart === undefined) return {};
      const held = predictHeld(readSamples(deployment, input.faultStart - HOUR), input.plan, {
        start: input.faultStart,
        end: input.since,
      });
      return { predictedLosses: [...held.values()].filter((p) => p.loss !== 'never').length };
    };
    const slack = 1000 * (input.plan.tolerance + 10 + policy.x509Ttl);
    const deadline = input.since + slack + 60_000;
    for (;;) {
      const now = Date.now();
      const waiting = unrecovered(
        readSamples(deployment, input.since - HOUR),
        input.plan.workloads,
        input.since,
        now,
      );
      Context.current().heartbeat(`${waiting.length} workload(s) not recovered`);
      if (waiting.length === 0) return { ok: true, at: now, detail: 'recovered', ...predictedLosses() };
      if (now > deadline)
        return {
          ok: false,
          at: now,
          detail: `not recovered ${((now - input.since) / 1000).toFixed(0)} s after healing: ${waiting.map((w) => w.spiffeId).join(', ')}`,
          ...predictedLosses(),
        };
      await sleep(POLL_MS);
    }
  },

  /**
   * Replays, against a peer, a credential issued before the fault (so chaining to the authority
   * just revoked) that is still within its validity: a workload SVID if one still is, else the
   * upstream agent's SVID saved at injection (agent SVIDs live longer). Only a refusal for another
   * reason than expiry counts: an expired certificate proves nothing about revocation. A peer that
   * accepts is asked again until the revocation has had one agent sync to reach it.
   */
  async replayRevokedSvid(input: {
    deploymentId: string;
    runId: string;
    before: number;
  }): Promise<{ refused: boolean; detail: string }> {
    const deployment = await Deployment.open(input.deploymentId);
    const endpoints = await probeEndpoints(deployment);
    const svids = svidsByWorkload(readSamples(deployment, input.before - HOUR));
    const now = Date.now();
    const candidates: { what: string; credentials: SvidCredentials; group: string; notAfter: number }[] = [];
    for (const endpoint of endpoints) {
      const old = (svids.get(endpoint.spiffeId) ?? [])
        .filter((v) => v.at <= input.before)
        .sort((x, y) => y.notAfter - x.notAfter)[0];
      const credentials = old && endpoint.svidFiles(old.serial);
      if (old && credentials)
        candidates.push({
          what: `${endpoint.spiffeId}'s pre-fault SVID ${old.serial}`,
          credentials,
          group: endpoint.group,
          notAfter: old.notAfter,
        });
    }
    const agent = readAgentSnapshot(deployment, input.runId);
    if (agent?.control?.ok)
      candidates.push({
        ...agent,
        what: `${agent.what} (a peer accepted it before the fault)`,
        group: 'upstream',
      });
    // The revocation reaches a peer with its agent's next sync and the Workload API's push of the new
    // bundle: accepted until then, it must be refused once that had time, with a sync's jitter to spare.
    const propagationS = 2 * deployment.topology.syncInterval + 2;
    const deadline = now + propagationS * 1000;
    // Still valid when the wait is over, so that only the revocation can be what refuses it.
    const usable = candidates
      .filter((c) => c.notAfter > deadline + 2000)
      .sort((x, y) => y.notAfter - x.notAfter);
    for (const candidate of usable) {
      const peer = endpoints.find(
        (e) => e.group === candidate.group && !candidate.what.startsWith(e.spiffeId),
      );
      if (!peer) continue;
      for (;;) {
        const result = await handshake({
          ...candidate.credentials,
          bundle: await peer.currentBundle(),
          port: peer.listenPort,
          expectedPeerId: peer.spiffeId,
        });
        const waited = ((Date.now() - now) / 1000).toFixed(1);
        if (result.ok) {
          if (Date.now() < deadline) {
            Context.current().heartbeat(`${peer.spiffeId} still accepts ${candidate.what} after ${waited} s`);
            await sleep(POLL_MS);
            continue;
          }
          return {
            refused: false,
            detail: `${peer.spiffeId} still accepted ${candidate.what} ${waited} s after the revocation (one agent sync, ${propagationS} s at most, brings it to every peer)`,
          };
        }
        const expired = /expired/i.test(result.error ?? '');
        return {
          refused: !expired,
          detail: `${peer.spiffeId} refused ${candidate.what} (valid until ${new Date(candidate.notAfter).toISOString()}) ${waited} s after the revocation: ${result.error ?? 'handshake failed'}${expired ? ' — for expiry, so the revocation was not what refused it' : ''}`,
        };
      }
    }
    return {
      refused: false,
      detail: `no credential issued before the fault was still valid to replay (${candidates.length} considered): the revocation could not be exercised`,
    };
  },

  /**
   * The results store made ready (created with its tables on first use, which takes seconds for
   * the embedded one), so that the first drill's conclusion only writes. Safe to repeat.
   */
  async prepareResultsStore(): Promise<void> {
    await ensureResultsStore();
  },

  /** Observations, predictions, expectations and the verdict, stored with the samples. */
  async concludeDrill(input: {
    runId: string;
    deploymentId: string;
    scenario: Scenario;
    outage: OutageClass;
    plan?: DrillPlanView;
    startedAt: number;
    windows: DrillWindows;
    injections: InjectionRecord[];
    forced?: ForcedVerdict;
    revokedReplay?: { refused: boolean; detail: string };
    suite?: string;
  }): Promise<DrillRecord> {
    const deployment = await Deployment.open(input.deploymentId).catch(() => undefined);
    const finishedAt = Date.now();
    const samples = deployment
      ? readSamples(deployment, input.startedAt - 60_000).filter((s) => s.at <= finishedAt)
      : [];
    const { steady, fault, recovery } = input.windows;
    const plan = input.plan;
    const reloadFailures =
      deployment && fault && input.scenario.fault.kind.startsWith('db-')
        ? await entryCacheReloadFailures(deployment, fault)
        : undefined;
    const outcome = judgeDrill({
      samples,
      expectations: input.scenario.expectations,
      ...(plan ? { plan } : {}),
      startedAt: input.startedAt,
      finishedAt,
      windows: input.windows,
      ...(input.forced ? { forced: input.forced } : {}),
      ...(input.revokedReplay ? { revokedReplay: input.revokedReplay } : {}),
      ...(deployment && input.scenario.fault.kind === 'db-restore'
        ? { laterRegistrations: registeredAfterBackup(deployment, input.scenario.fault) }
        : {}),
      ...(reloadFailures ? { entryCacheReloadFailures: reloadFailures } : {}),
    });
    const findings: string[] = [];
    if (reloadFailures)
      findings.push(
        `entry cache reloads that failed while the fault held: ${reloadFailures.map((c) => `${c.server} ${c.failures}`).join(', ')}${deployment?.replica() ? ' (the servers reload it from the read replica)' : ''}`,
      );
    if (deployment && input.scenario.fault.kind === 'db-restore') {
      findings.push(...restoreFindings(deployment, input.runId));
      const withdrawn = await withdrawLaterRegistrations(deployment, input.runId, input.scenario.fault).catch(
        (error: Error) => {
          findings.push(`the registrations made after the backup could not be withdrawn: ${error.message}`);
          return [];
        },
      );
      if (withdrawn.length > 0)
        findings.push(
          `the datastore was never lost: withdrew what was registered after the backup: ${withdrawn.join(', ')}`,
        );
      removeRestoreFiles(deployment, input.runId);
    }
    if (deployment && outcome.verdict !== 'passed') {
      const kept = keepLogs(deployment.plan.runDir, input.runId);
      if (kept.files > 0)
        findings.push(`the logs of the deployment's processes at the verdict are kept in ${kept.dir}`);
    }
    if (deployment) {
      const watchdog = healedBy(deployment, input.runId);
      if (watchdog)
        findings.push(
          `the fault's lease lapsed and the ${watchdog.by} healed it at ${new Date(watchdog.at).toISOString()}: ${watchdog.detail}`,
        );
    }
    const record: DrillRecord = {
      runId: input.runId,
      scenario: input.scenario.name,
      description: input.scenario.description,
      outage: input.outage,
      outageSeconds: plan?.outageSeconds ?? 0,
      deploymentId: input.deploymentId,
      topology: deployment?.topology.name ?? 'unknown',
      verdict: outcome.verdict,
      reason: outcome.reason,
      startedAt: input.startedAt,
      finishedAt,
      ...(steady ? { steady } : {}),
      ...(fault ? { fault } : {}),
      ...(recovery ? { recovery } : {}),
      injections: input.injections,
      expectations: outcome.expectations,
      workloads: outcome.workloads,
      findings,
    };
    await withResults((store) => store.saveDrill(record, samples, input.suite));
    return record;
  },
};

export type DrillActivities = typeof drillActivities;
