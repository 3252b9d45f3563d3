/**
 * Bringing a server group back after a fault, and seeing that it is back: its servers (and balancer)
 * running and answering from their datastore, then its agents. Shared by the kinds that stop servers,
 * balancers or the datastore.
 */
import type { Deployment } from '../deployment.js';
import { portAcceptsConnections } from '../host/free-port.js';
import type { ServerAdmin } from '../implementation/server-admin.js';
import type { Observations } from './fault.js';

/** Agents of `group` running again, re-attesting those whose saved SVID expired while they were down. */
async function ensureAgentsOf(deployment: Deployment, group: string): Promise<void> {
  const stack = (await deployment.stack(group)).refresh();
  for (let i = 0; i < stack.agentSockets.length; i++)
    await stack.ensureAgent(i, deployment.agentNodeId(group, i));
}

/** Servers of `group` (and its balancer) running and healthy, then its agents. */
export async function restoreGroup(deployment: Deployment, group: string): Promise<void> {
  const stack = (await deployment.stack(group)).refresh();
  await stack.ensureServers();
  await ensureAgentsOf(deployment, group);
  // A downstream's upstream agent exits if its own SVID expires while its upstream is unreachable.
  if (group === 'upstream')
    for (const name of Object.keys(deployment.plan.downstreams)) {
      const downstream = (await deployment.stack(name)).refresh();
      if (!downstream.upstreamAgent?.isRunning()) await downstream.ensureDownstream();
    }
}

/** Listing agents reads the datastore, so an answer proves the server reaches its database. */
const answersFromDatastore = (admin: ServerAdmin) =>
  admin.listAgents().then(
    () => true,
    () => false,
  );

/** Whether the group's servers run and answer from their datastore, its balancer listens and its agents run. */
export async function groupHealthy(deployment: Deployment, group: string, seen: Observations): Promise<void> {
  const stack = (await deployment.stack(group)).refresh();
  const problems = seen.problems;
  for (let i = 0; i < stack.serverPorts.length; i++) {
    if (!stack.servers[i]?.isRunning()) problems.push(`${group} server ${i} is not running`);
    else if (!(await answersFromDatastore(stack.admin(i))))
      problems.push(`${group} server ${i} does not answer from its datastore`);
  }
  if (stack.options.loadBalancer) {
    if (!stack.balancer?.isRunning()) problems.push(`${group}'s load balancer is not running`);
    else if (!(await portAcceptsConnections(stack.agentFacingPort)))
      problems.push(`${group}'s load balancer refuses connections on 127.0.0.1:${stack.agentFacingPort}`);
  }
  for (let i = 0; i < stack.agentSockets.length; i++)
    if (!stack.agents[i]?.isRunning()) problems.push(`${group} agent-${i} is not running`);
  if (problems.length === 0) seen.seen.push(`${group} healthy`);
}

/** The group's servers and balancer back, described for the heal's record. */
export async function healServersOf(deployment: Deployment, group: string): Promise<string> {
  await restoreGroup(deployment, group);
  return `${group}'s servers${deployment.topology.upstream.loadBalancer && group === 'upstream' ? ' and load balancer' : ''} running and healthy`;
}
