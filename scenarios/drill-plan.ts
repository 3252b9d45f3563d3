/**
 * From a scenario, an outage class and the deployment's lifetimes to what the drill will do and what
 * the TTL model expects of every workload. Pure: the drill workflow and `drill plan` both use it.
 */
import type { ImplementationName } from '../deployment/topology/topology.js';
import type { PredictedIdentity, TimeWindow } from './drill-record.js';
import { IMPLEMENTATION_TIMING, timingOf } from './implementation-timing.js';
import type { OutageLength, Scenario } from './scenario.js';
import {
  fullLifetime,
  heldExpiryInSteadyState,
  outageLength,
  predictCutOffWorkload,
  predictWorkload,
  type HeldSvid,
  type IssuancePolicy,
  type OutageClass,
} from './ttl-model.js';

/** What the fault does to one group's issuance: none, or out for the whole fault window. */
export type IssuanceEffect = 'issuance' | 'none';

export interface DrillPolicy {
  /** Seconds. */
  x509Ttl: number;
  syncInterval: number;
  backdate: number;
  /**
   * Seconds between reloads of the servers' entry cache (the topology's spire.server.cache_reload_interval);
   * absent in plans made before topologies had it, which ran SPIRE's default.
   */
  entryCacheReload?: number;
  /**
   * The SPIRE each server group runs (its agents too), whose timings the model predicts from; absent in
   * plans made before topologies could choose, which ran the bundled SPIRE.
   */
  implementations?: Record<string, ImplementationName>;
}

export interface PlannedWorkload {
  spiffeId: string;
  group: string;
  /** Whether the fault takes SVID issuance away from this workload while it holds. */
  effect: IssuanceEffect;
  /** NotAfter (ms) of the CA that signs this workload's SVIDs, when it caps them (a downstream's intermediate). */
  caNotAfter?: number;
}

/** A drill's plan as the workflow carries it: the hold, the lifetimes and each workload's exposure. */
export interface DrillPlanView {
  outageSeconds: number;
  policy: DrillPolicy;
  /** Seconds of slack on predicted instants. */
  tolerance: number;
  targets: string[];
  workloads: PlannedWorkload[];
  /** How many workloads the model says may lose identity, before the held SVIDs are known. */
  predictedLosses: number;
}

/** The model's policy for a workload of `group` (none: lifetimes alone, as for outage lengths). */
export function issuancePolicy(policy: DrillPolicy, caNotAfterMs?: number, group?: string): IssuancePolicy {
  return {
    ttl: policy.x509Ttl,
    backdate: policy.backdate,
    syncInterval: policy.syncInterval,
    timing: timingOf(group === undefined ? undefined : policy.implementations?.[group]),
    ...(caNotAfterMs !== undefined ? { caNotAfter: caNotAfterMs / 1000 } : {}),
  };
}

/**
 * The lifetimes and timings the model predicts from. max_attested_node_info_staleness is not among
 * them: in SPIRE v1.13.3 it spares the datastore reads that authorize agent calls, but the agent's
 * sync also needs GetBundle, which reads the datastore (through a 1 s cache, with no stale serving),
 * and so do new connections' TLS handshakes; a datastore outage stops renewals with or without it.
 */
export function drillPolicy(topology: {
  ttls: { x509Svid: number };
  syncInterval: number;
  spire?: { server: { cache_reload_interval: number } };
  upstream: { implementation: ImplementationName };
  downstreams: { name: string; implementation: ImplementationName }[];
}): DrillPolicy {
  const implementations: Record<string, ImplementationName> = { upstream: topology.upstream.implementation };
  for (const d of topology.downstreams) implementations[d.name] = d.implementation;
  return {
    x509Ttl: topology.ttls.x509Svid,
    syncInterval: topology.syncInterval,
    // Every implementation backdates alike (a topology of mixed SPIREs has one lifetime per TTL).
    backdate: IMPLEMENTATION_TIMING[topology.upstream.implementation].backdate,
    entryCacheReload:
      topology.spire?.server.cache_reload_interval ??
      IMPLEMENTATION_TIMING[topology.upstream.implementation].entryCacheReload,
    implementations,
  };
}

/** Seconds the fault is held for `outageClass`: the scenario's length, or the model's representative one. */
export function outageSeconds(scenario: Scenario, outageClass: OutageClass, policy: DrillPolicy): number {
  const given: OutageLength | undefined = scenario.outage[outageClass];
  if (!given) return outageLength(outageClass, issuancePolicy(policy));
  return 'seconds' in given ? given.seconds : Math.max(1, Math.round(given.ttl * policy.x509Ttl));
}

/** Where `seconds` falls among the classes, as the issue defines them, for a sanity check of a given length. */
export function classOf(seconds: number, policy: DrillPolicy): OutageClass | 'between' {
  const lifetime = fullLifetime(issuancePolicy(policy));
  if (seconds < 0.45 * lifetime) return 'short';
  if (seconds >= 0.5 * lifetime && seconds <= lifetime) return 'medium';
  if (seconds > lifetime) return 'long';
  return 'between';
}

/** The default tolerance on predicted instants: one sync interval plus a second of scheduling slack. */
export function defaultTolerance(policy: DrillPolicy): number {
  return policy.syncInterval + 1;
}

/**
 * The model's prediction for one workload, in ms, given the SVID it held when the fault began
 * (`held`, ms) and the fault window (ms).
 */
export function predictIdentity(
  workload: PlannedWorkload,
  held: { notBefore: number; notAfter: number } | undefined,
  fault: TimeWindow,
  policy: DrillPolicy,
): PredictedIdentity {
  if (workload.effect === 'none' && workload.caNotAfter === undefined) return { loss: 'never' };
  const p = issuancePolicy(policy, workload.caNotAfter, workload.group);
  const start = fault.start / 1000;
  const end = fault.end / 1000;
  const heldSeconds: HeldSvid = held
    ? { notBefore: held.notBefore / 1000, notAfter: held.notAfter / 1000 }
    : { notBefore: start - policy.backdate, notAfter: start };
  // A downstream whose upstream is away keeps signing until its intermediate expires, and signs again
  // once it has reconnected and has a new one.
  const prediction =
    workload.effect === 'none'
      ? predictCutOffWorkload(heldSeconds, { start, end }, { ...p, caNotAfter: p.caNotAfter! })
      : predictWorkload(heldSeconds, { start, end }, p);
  return {
    loss: prediction.loss,
    ...(prediction.lossAt !== undefined ? { lossAt: prediction.lossAt * 1000 } : {}),
    ...(prediction.recoveredBy
      ? {
          recoveredBy: {
            earliest: prediction.recoveredBy.earliest * 1000,
            latest: prediction.recoveredBy.latest * 1000,
          },
        }
      : {}),
  };
}

/**
 * The dry-run prediction: no SVID is known yet, so the held SVID may be anywhere in its renewal
 * cycle. Loss is 'never' when even the earliest expiry outlives the first successful sync,
 * 'always' when even the latest expiry precedes the end of the fault, else 'possibly'.
 */
export function predictUnknownHeld(
  workload: PlannedWorkload,
  fault: TimeWindow,
  policy: DrillPolicy,
): PredictedIdentity {
  if (workload.effect === 'none' && workload.caNotAfter === undefined) return { loss: 'never' };
  const p = issuancePolicy(policy, workload.caNotAfter, workload.group);
  const expiry = heldExpiryInSteadyState(fault.start / 1000, p);
  const earliest = predictIdentity(
    workload,
    { notBefore: fault.start - 1000 * policy.backdate, notAfter: expiry.earliest * 1000 },
    fault,
    policy,
  );
  const latest = predictIdentity(
    workload,
    { notBefore: fault.start - 1000 * policy.backdate, notAfter: expiry.latest * 1000 },
    fault,
    policy,
  );
  if (earliest.loss === 'never') return { loss: 'never' };
  if (latest.loss === 'always')
    return {
      loss: 'always',
      ...(latest.lossAt !== undefined ? { lossAt: latest.lossAt } : {}),
      ...(latest.recoveredBy ? { recoveredBy: latest.recoveredBy } : {}),
    };
  return {
    loss: 'possibly',
    ...(earliest.lossAt !== undefined ? { lossAt: earliest.lossAt } : {}),
    ...(earliest.recoveredBy ? { recoveredBy: earliest.recoveredBy } : {}),
  };
}

/** The parts of a fault spec the plan reads (deployment/faults/fault-spec.ts has the full schema). */
type FaultTarget = { kind: string; agent?: number; downstream?: string };

/** Where a fault lands (deployment/faults/fault-lifecycle.ts resolveFault): what it does, to which server groups. */
export interface FaultReach {
  effect: IssuanceEffect | 'authority';
  groups: string[];
}

/** Downstream groups left signing with their intermediate alone: cut off, or their upstream's issuance down. */
export function cappedGroups(slots: { group: string }[], fault: FaultTarget, reach: FaultReach): string[] {
  const upstreamDown = reach.effect === 'issuance' && reach.groups.includes('upstream');
  const groups = new Set(slots.map((s) => s.group).filter((g) => g !== 'upstream'));
  return [...groups].filter(
    (g) =>
      !(reach.effect === 'issuance' && reach.groups.includes(g)) &&
      (fault.downstream === g || (fault.kind !== 'upstream-outage' && upstreamDown)),
  );
}

/**
 * What the fault does to each workload's issuance: the groups it reaches lose it when it stops
 * issuance (for agent-down, that agent's workloads only); downstreams cut off from their upstream
 * keep signing with their intermediate, whose NotAfter (`caps`, ms by group, when known) then caps
 * what they issue.
 */
export function planWorkloads(
  slots: { spiffeId: string; group: string; agent: number }[],
  fault: FaultTarget,
  reach: FaultReach,
  caps: Record<string, number | undefined> = {},
): PlannedWorkload[] {
  const capped = new Set(cappedGroups(slots, fault, reach));
  return slots.map((slot) => {
    const hit =
      reach.effect === 'issuance' &&
      reach.groups.includes(slot.group) &&
      (fault.kind !== 'agent-down' || fault.agent === slot.agent);
    const w: PlannedWorkload = {
      spiffeId: slot.spiffeId,
      group: slot.group,
      effect: hit ? 'issuance' : 'none',
    };
    const cap = caps[slot.group];
    if (!hit && capped.has(slot.group) && cap !== undefined) w.caNotAfter = cap;
    return w;
  });
}
