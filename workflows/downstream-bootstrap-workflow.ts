import { setCurrentDetails } from '@temporalio/workflow';
import { quick } from './activity-options.js';

export interface DownstreamBootstrapInput {
  deploymentId: string;
  downstream: string;
}

/**
 * Brings one nested downstream up: its upstream agent with a fresh join token and its server, which
 * obtains an intermediate CA from the upstream; then its agents and their workloads' entries.
 */
export async function downstreamBootstrapWorkflow(
  input: DownstreamBootstrapInput,
): Promise<{ agents: number }> {
  const { deploymentId: id, downstream: name } = input;
  setCurrentDetails(`Starting the upstream agent and server of downstream **${name}**`);
  await quick.ensureDownstreamServer({ id, name });
  setCurrentDetails(`Attesting the agents of downstream **${name}**`);
  const { agents } = await quick.ensureDownstreamAgents({ id, name });
  setCurrentDetails(`Registering the workloads of downstream **${name}**`);
  await quick.ensureWorkloadEntries({ id, name });
  setCurrentDetails(`Downstream **${name}** is up with ${agents} agent(s)`);
  return { agents };
}
