/** One workload a topology declares, and where it fetches its identity. */
export interface WorkloadSlot {
  /** The server group that issues its SVIDs: 'upstream' or a downstream's name. */
  group: string;
  agent: number;
  spiffeId: string;
  /** The agent's Workload API socket. */
  socket: string;
}
