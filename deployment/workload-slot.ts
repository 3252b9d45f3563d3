/** One workload a topology declares, and where it fetches its identity. */
export interface WorkloadSlot {
  /** The server group that issues its SVIDs: 'upstream' or a downstream's name. */
  group: string;
  agent: number;
  spiffeId: string;
  /** The group id its probe runs and its fetches are made under; undefined when not root (shared uid). */
  gid?: number;
  /** The selectors its registration entry selects it by (see workload-identity.ts). */
  selectors: string[];
  /** The agent's Workload API socket. */
  socket: string;
}
