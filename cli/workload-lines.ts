import type { DeploymentStatusView } from '../workflows/deployment-workflow.js';

type WorkloadViews = NonNullable<NonNullable<DeploymentStatusView['workloads']>['list']>;

/** `status`'s short account of the workloads: one line each, with the agent and selectors it is known by. */
export function workloadLines(workloads: WorkloadViews): string[] {
  if (workloads.length === 0) return [];
  const shared = workloads.some((w) => w.selectors.some((s) => s.startsWith('unix:uid:')));
  return [
    `workloads (${workloads.length})${shared ? ': not run as root, so every workload shares the worker uid and is handed every SVID of its agent' : ''}:`,
    ...workloads.map((w) => `  ${w.spiffeId}  agent ${w.agent.spiffeId}  ${w.selectors.join(' ')}`),
  ];
}
