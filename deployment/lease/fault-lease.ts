/**
 * A fault's lease: `<runDir>/faults/<runId>.json`, written before the fault is injected and renewed
 * while a drill holds it. A fault whose lease has run out belongs to nobody, and the watchdog heals
 * it; `<runId>.healed.json` then says so. Every change to a deployment's faults happens under one
 * lock file, so a drill and the watchdog never act on the same processes at once.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { withFileLock } from '../host/file-lock.js';
import type { Deployment } from '../deployment.js';
import { faultSpecSchema } from '../faults/fault-spec.js';

const leaseSchema = z.object({
  spec: faultSpecSchema,
  /** Epoch ms after which the fault is the watchdog's to heal. */
  leaseUntil: z.number(),
  /** Epoch ms of the first injection attempt (the lease is written before acting). */
  injectedAt: z.number(),
  /** ca-compromise: each upstream server's authority declared compromised, recorded before rotating away. */
  authorities: z.array(z.string()).optional(),
});
export type FaultLease = z.output<typeof leaseSchema>;

const healedSchema = z.object({
  by: z.literal('watchdog'),
  at: z.number(),
  detail: z.string(),
});
export type HealedRecord = z.output<typeof healedSchema>;

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HEALED_SUFFIX = '.healed.json';

export function validateRunId(runId: string): string {
  if (!RUN_ID.test(runId))
    throw new Error(
      `invalid run id "${runId}": letters, digits, dots, dashes and underscores, at most 128 characters`,
    );
  return runId;
}

export function faultsDir(runDir: string): string {
  return join(runDir, 'faults');
}

const leasePath = (runDir: string, runId: string) => join(faultsDir(runDir), `${validateRunId(runId)}.json`);
const healedPath = (runDir: string, runId: string) =>
  join(faultsDir(runDir), `${validateRunId(runId)}${HEALED_SUFFIX}`);

/** Replaces a file whole: a reader never sees half of it, even if this process dies mid-write. */
function writeAtomically(path: string, value: unknown): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(temp, path);
}

function readJson<T>(path: string, schema: z.ZodType<T>): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new Error(`${path} is not a fault record this version understands: ${parsed.error.message}`);
  return parsed.data;
}

export function readLease(runDir: string, runId: string): FaultLease | undefined {
  return readJson(leasePath(runDir, runId), leaseSchema);
}

export function writeLease(runDir: string, runId: string, lease: FaultLease): void {
  mkdirSync(faultsDir(runDir), { recursive: true });
  writeAtomically(leasePath(runDir, runId), lease);
}

export function removeLease(runDir: string, runId: string): void {
  rmSync(leasePath(runDir, runId), { force: true });
}

/** Every lease of the deployment, expired ones included. */
export function listLeases(runDir: string): { runId: string; lease: FaultLease }[] {
  const dir = faultsDir(runDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.endsWith(HEALED_SUFFIX))
    .map((f) => f.slice(0, -'.json'.length))
    .filter((runId) => RUN_ID.test(runId))
    .flatMap((runId) => {
      const lease = readLease(runDir, runId);
      return lease ? [{ runId, lease }] : [];
    });
}

export function readHealed(runDir: string, runId: string): HealedRecord | undefined {
  return readJson(healedPath(runDir, runId), healedSchema);
}

export function writeHealed(runDir: string, runId: string, record: HealedRecord): void {
  mkdirSync(faultsDir(runDir), { recursive: true });
  writeAtomically(healedPath(runDir, runId), record);
}

/** Runs `fn` holding the deployment's fault lock. */
export function withFaultLock<T>(runDir: string, fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  const dir = faultsDir(runDir);
  mkdirSync(dir, { recursive: true });
  return withFileLock(
    join(dir, '.lock'),
    fn,
    timeoutMs,
    (holder) =>
      `the fault lock ${join(dir, '.lock')} has been held by pid ${holder} for over ${timeoutMs / 1000} s`,
  );
}

/** Extends the lease of run `runId`'s fault; refused once the lease has lapsed (the fault is the watchdog's then). */
export function renewLease(
  deployment: Deployment,
  runId: string,
  leaseMs: number,
): Promise<{ leaseUntil: number }> {
  const runDir = deployment.plan.runDir;
  return withFaultLock(runDir, async () => {
    const lease = readLease(runDir, runId);
    const now = Date.now();
    if (!lease) {
      const healed = readHealed(runDir, runId);
      throw new Error(
        healed
          ? `the fault of run ${runId} is gone: the ${healed.by} healed it at ${new Date(healed.at).toISOString()} after its lease lapsed`
          : `run ${runId} holds no fault on deployment ${deployment.id}`,
      );
    }
    if (lease.leaseUntil < now)
      throw new Error(
        `the lease of run ${runId}'s fault lapsed at ${new Date(lease.leaseUntil).toISOString()}: the watchdog heals it`,
      );
    lease.leaseUntil = now + leaseMs;
    writeLease(runDir, runId, lease);
    return { leaseUntil: lease.leaseUntil };
  });
}

export interface ActiveLease extends FaultLease {
  runId: string;
  expired: boolean;
}

/** Every fault the deployment holds, with its lease. */
export function activeLeases(deployment: Deployment): ActiveLease[] {
  const now = Date.now();
  return listLeases(deployment.plan.runDir).map(({ runId, lease }) => ({
    runId,
    ...lease,
    expired: lease.leaseUntil < now,
  }));
}

/** Who healed run `runId`'s fault when its lease lapsed, if the watchdog did. */
export function healedBy(deployment: Deployment, runId: string): HealedRecord | undefined {
  return readHealed(deployment.plan.runDir, runId);
}
