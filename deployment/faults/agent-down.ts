/** agent-down: one agent of the group stopped after it attested; `agent` is its index (agent-0, agent-1…). */
import { z } from 'zod';
import { socketAcceptsConnections } from '../host/free-port.js';
import { defineFault, FaultRefused } from './fault.js';
import { groupName, groupShape } from './fault-group.js';

export const agentDown = defineFault({
  kind: 'agent-down',
  spec: z.strictObject({
    kind: z.literal('agent-down'),
    group: groupName,
    agent: z
      .number({ error: 'expected the agent index (0 for agent-0)' })
      .int({ error: 'expected a whole agent index' })
      .min(0, { error: 'agent indexes start at 0' }),
  }),
  describe: (spec) => `agent-down (${spec.group} agent-${spec.agent})`,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    if (g.agents === 0)
      throw new FaultRefused(
        g.name === 'upstream'
          ? 'the upstream servers have no agents of their own (upstream.agents is 0)'
          : `${g.name} has no agents`,
      );
    if (spec.agent >= g.agents)
      throw new FaultRefused(
        `${g.name} has ${g.agents} agent(s), agent-0 to agent-${g.agents - 1}: there is no agent-${spec.agent}`,
      );
    return {
      targets: [`${g.name} agent-${spec.agent} (${deployment.agentNodeId(g.name, spec.agent)})`],
      effect: 'issuance',
      groups: [g.name],
    };
  },
  async inject(deployment, spec) {
    const stack = (await deployment.stack(spec.group)).refresh();
    const agent = stack.agents[spec.agent];
    // The fault is an agent that comes back with its identity: one that never attested has none.
    if (!(await stack.implementation.storedAgentIdentity(stack.agentDataDir(spec.agent))))
      throw new Error(
        `${spec.group} agent-${spec.agent} has not attested yet: there is no agent to take down`,
      );
    await agent?.stop();
    return `${spec.group} agent-${spec.agent} stopped`;
  },
  async confirm(deployment, spec, seen) {
    const stack = (await deployment.stack(spec.group)).refresh();
    const what = `${spec.group} agent-${spec.agent}`;
    seen.processGone(what, stack.agents[spec.agent]);
    const socket = stack.agentSockets[spec.agent]!;
    if (await socketAcceptsConnections(socket))
      seen.problems.push(`${what}'s Workload API socket ${socket} still accepts connections`);
    else seen.seen.push(`${what}'s Workload API is gone`);
  },
  async heal(deployment, spec) {
    const stack = (await deployment.stack(spec.group)).refresh();
    await stack.ensureAgent(spec.agent, deployment.agentNodeId(spec.group, spec.agent));
    return `${spec.group} agent-${spec.agent} running`;
  },
  async verify(deployment, spec, seen) {
    const stack = (await deployment.stack(spec.group)).refresh();
    const what = `${spec.group} agent-${spec.agent}`;
    if (!stack.agents[spec.agent]?.isRunning()) seen.problems.push(`${what} is not running`);
    else if ((await stack.agentCli(['healthcheck'], spec.agent)).code !== 0)
      seen.problems.push(`${what} fails its healthcheck`);
    else seen.seen.push(`${what} healthy`);
  },
});
