import { patched, startChild, type ChildWorkflowHandle } from '@temporalio/workflow';
import type { WorkloadReport } from '../activities/deployment-activities.js';
import type { Topology } from '../deployment/topology/topology.js';
import { drillWaits, quick, waits } from './activity-options.js';
import { downstreamBootstrapWorkflow } from './downstream-bootstrap-workflow.js';
import { DeploymentId, Operation, TrustDomain } from './search-attributes.js';

/** How a step names a group's SPIRE; a topology from before groups named theirs has only its own. */
const spireOf = (topology: Topology, own: string | undefined) =>
  (own ?? topology.implementation) === 'spire' ? 'real SPIRE' : 'bundled SPIRE';

/**
 * The spin-up runbook shared by the deployment workflow and standalone drills and suites: plan,
 * upstream servers, each downstream through a child workflow, then every workload verified and probed.
 */
export async function spinUp(
  id: string,
  topology: Topology,
  step: (text: string) => void,
): Promise<WorkloadReport> {
  step('planning ports, databases and the run directory');
  await quick.planDeployment({ id, topology });
  step(
    `starting ${topology.upstream.servers} upstream server(s) (${spireOf(topology, topology.upstream.implementation)})${topology.upstream.loadBalancer ? ' behind a load balancer' : ''}`,
  );
  await quick.ensureUpstream({ id });
  const children: ChildWorkflowHandle<typeof downstreamBootstrapWorkflow>[] = [];
  for (const d of topology.downstreams) {
    step(`bootstrapping downstream ${d.name} (${spireOf(topology, d.implementation)})`);
    children.push(
      await startChild(downstreamBootstrapWorkflow, {
        workflowId: `bootstrap/${id}/${d.name}`,
        args: [{ deploymentId: id, downstream: d.name }],
        staticSummary: `Bootstrap downstream ${d.name} of ${id}`,
        staticDetails: `Upstream agent with a fresh join token, then the nested server (intermediate CA from the upstream), then ${d.agents} agent(s) with ${d.workloadsPerAgent} workload(s) each.`,
        typedSearchAttributes: [
          { key: DeploymentId, value: id },
          { key: TrustDomain, value: topology.trustDomain },
          { key: Operation, value: 'bootstrap-downstream' },
        ],
      }),
    );
  }
  for (const child of children) await child.result();
  step('verifying that every workload holds an SVID chaining to the root');
  const report = await waits.verifyWorkloads({ id });
  // Deployments spun up before probes started here replay without this step.
  if (patched('spin-up-starts-probes')) {
    step(
      `starting a probe under each of the ${report.workloads} workload(s), to record what its identity does`,
    );
    await drillWaits.startProbes({ deploymentId: id });
  }
  return report;
}
