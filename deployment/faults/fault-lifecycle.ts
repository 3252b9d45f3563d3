/**
 * A fault's life on a deployment, whatever its kind: resolved, injected under its lease, confirmed,
 * healed (by the drill, or by the watchdog once the lease lapsed), verified healed. The kind's own
 * module (faults/registry.ts) does the work; this holds the lease and the lock around it. Knows
 * nothing of Temporal: the drill activities wrap these.
 */
import type { Deployment } from '../deployment.js';
import {
  activeLeases,
  readHealed,
  readLease,
  removeLease,
  withFaultLock,
  writeHealed,
  writeLease,
  type FaultLease,
} from '../lease/fault-lease.js';
import { ensureWatchdog } from '../lease/fault-watchdog.js';
import { Observations, type FaultResolution } from './fault.js';
import type { FaultSpec } from './fault-spec.js';
import { faultOf } from './registry.js';

/** The fault in a few words, for logs and records. */
export const describeFault = (spec: FaultSpec): string => faultOf(spec).describe(spec);

/** Where the fault lands and what it does to issuance; throws FaultRefused for what the topology cannot host. */
export function resolveFault(deployment: Deployment, spec: FaultSpec): FaultResolution {
  return faultOf(spec).resolve(deployment, spec);
}

const sameSpec = (a: FaultSpec, b: FaultSpec) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Injects the fault for drill run `runId`, idempotently (a retry finishes what an earlier attempt
 * began). The lease is written and the watchdog started before anything is touched, so a caller that
 * dies at any point leaves a fault the watchdog heals once the lease lapses.
 */
export async function injectFault(
  deployment: Deployment,
  runId: string,
  spec: FaultSpec,
  leaseMs: number,
): Promise<string> {
  resolveFault(deployment, spec);
  const runDir = deployment.plan.runDir;
  return withFaultLock(runDir, async () => {
    const now = Date.now();
    const held = readLease(runDir, runId);
    if (held && !sameSpec(held.spec, spec))
      throw new Error(`run ${runId} already holds another fault: ${describeFault(held.spec)}`);
    const healed = readHealed(runDir, runId);
    if (!held && healed)
      throw new Error(
        `the fault of run ${runId} was healed by the ${healed.by} at ${new Date(healed.at).toISOString()} after its lease lapsed: start a new run to inject again`,
      );
    const lease: FaultLease = { spec, injectedAt: held?.injectedAt ?? now, leaseUntil: now + leaseMs };
    if (held?.authorities) lease.authorities = held.authorities;
    writeLease(runDir, runId, lease);
    await ensureWatchdog(deployment);
    return faultOf(spec).inject(deployment, spec, {
      runId,
      ...(lease.authorities ? { authorities: lease.authorities } : {}),
      recordAuthorities: (authorities) => {
        lease.authorities = authorities;
        writeLease(runDir, runId, lease);
      },
    });
  });
}

/** Whether the fault's effect is there now, seen from outside: ports, processes, sockets, the bundle. */
export async function confirmFault(
  deployment: Deployment,
  spec: FaultSpec,
): Promise<{ injected: boolean; detail: string }> {
  const seen = new Observations();
  await faultOf(spec).confirm(deployment, spec, seen);
  const { ok, detail } = seen.outcome(describeFault(spec));
  return { injected: ok, detail };
}

export interface Healed {
  detail: string;
  /** When the fault's cause was gone: issuance resumes from here, often before healing has finished. */
  restoredAt: number;
}

/** Undoes the fault; `restoredAt` is when its cause was gone, or when healing ended if the kind does not say. */
async function heal(
  deployment: Deployment,
  runId: string,
  spec: FaultSpec,
  lease: FaultLease | undefined,
): Promise<Healed> {
  let restoredAt: number | undefined;
  const detail = await faultOf(spec).heal(deployment, spec, {
    runId,
    ...(lease?.authorities ? { authorities: lease.authorities } : {}),
    restored: () => void (restoredAt ??= Date.now()),
  });
  return { detail, restoredAt: restoredAt ?? Date.now() };
}

/**
 * Undoes run `runId`'s fault, idempotently: safe after a partial injection, and a no-op once healed.
 * Restores with the stacks' ensure-methods, which start only what is not running; the lease goes last.
 */
export function healFault(deployment: Deployment, runId: string, spec: FaultSpec): Promise<Healed> {
  const runDir = deployment.plan.runDir;
  return withFaultLock(runDir, async () => {
    const lease = readLease(runDir, runId);
    if (lease && !sameSpec(lease.spec, spec))
      throw new Error(`run ${runId} holds another fault: ${describeFault(lease.spec)}`);
    const healed = await heal(deployment, runId, spec, lease);
    removeLease(runDir, runId);
    return healed;
  });
}

/** Whether the deployment is whole again where the fault was: processes healthy, ports open, bundles clean. */
export async function verifyHealed(
  deployment: Deployment,
  spec: FaultSpec,
): Promise<{ healed: boolean; detail: string }> {
  const seen = new Observations();
  await faultOf(spec).verify(deployment, spec, seen);
  const { ok, detail } = seen.outcome();
  return { healed: ok, detail };
}

/**
 * The watchdog's round: heals every fault whose lease has lapsed and records that it did. A fault
 * renewed meanwhile (the lease is read again under the lock) is left alone.
 */
export async function healLapsedFaults(
  deployment: Deployment,
): Promise<{ runId: string; healed: boolean; detail: string }[]> {
  const runDir = deployment.plan.runDir;
  const results: { runId: string; healed: boolean; detail: string }[] = [];
  for (const { runId } of activeLeases(deployment).filter((l) => l.expired)) {
    try {
      const outcome = await withFaultLock(runDir, async () => {
        const lease = readLease(runDir, runId);
        if (!lease || lease.leaseUntil >= Date.now()) return undefined;
        const { detail, restoredAt } = await heal(deployment, runId, lease.spec, lease);
        // Recorded before the lease goes: a crash in between means healing again, never a silent loss.
        writeHealed(runDir, runId, { by: 'watchdog', at: restoredAt, detail });
        removeLease(runDir, runId);
        return detail;
      });
      if (outcome !== undefined) results.push({ runId, healed: true, detail: outcome });
    } catch (error) {
      results.push({ runId, healed: false, detail: (error as Error).message });
    }
  }
  return results;
}
