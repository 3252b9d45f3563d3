/**
 * How each workload of a topology is told apart by its agent's `unix` workload attestor.
 *
 * As root, each workload slot runs (and is registered) under a group id of its own: the probe keeps
 * uid 0, so it can read the package wherever it is cloned (under /root, say), while its gid alone
 * tells it from every other workload. Not as root, a process cannot pick its ids: every workload
 * shares the worker's uid, and an agent hands each of them every SVID registered under it.
 */

/**
 * First group id of workload slots: high above the ids distributions hand to users and system
 * groups (and the downstream servers' 4242), so no other process on the host carries one by chance.
 */
export const WORKLOAD_GID_BASE = 61000;

export interface WorkloadIdentity {
  /** The group id the workload runs and fetches under; undefined when it shares the worker's ids. */
  gid?: number;
  /** The selectors its registration entry selects it by. */
  selectors: string[];
}

/** The ids of the process that would run the workloads (the worker). */
export interface ProcessIds {
  uid: number;
}

const currentIds = (): ProcessIds => ({ uid: process.getuid?.() ?? 0 });

/** The selectors of the calling process itself, by its uid: for a process that is its own workload. */
export function processSelectors(ids: ProcessIds = currentIds()): string[] {
  return [`unix:uid:${ids.uid}`];
}

/** The identity of the workload slot at `index` (its position in the topology), stable across runs. */
export function workloadIdentity(index: number, ids: ProcessIds = currentIds()): WorkloadIdentity {
  if (ids.uid !== 0) return { selectors: processSelectors(ids) };
  const gid = WORKLOAD_GID_BASE + index;
  return { gid, selectors: [`unix:gid:${gid}`] };
}
