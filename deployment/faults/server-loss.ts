/** server-loss: every server of the group stopped, and its balancer. */
import { defineFault } from './fault.js';
import { balancerTarget, groupFaultSpec, groupShape, kindInGroup, serverTarget } from './fault-group.js';
import { groupHealthy, healServersOf } from './group-recovery.js';

export const serverLoss = defineFault({
  kind: 'server-loss',
  spec: groupFaultSpec('server-loss'),
  describe: kindInGroup,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    return {
      targets: [
        ...g.serverPorts.map((_, i) => serverTarget(g, i)),
        ...(g.balancer ? [balancerTarget(g)] : []),
      ],
      effect: 'issuance',
      groups: [g.name],
    };
  },
  async inject(deployment, spec) {
    const stack = (await deployment.stack(spec.group)).refresh();
    await stack.balancer?.stop();
    for (const server of stack.servers) await server?.stop();
    return `every ${spec.group} server stopped${stack.options.loadBalancer ? ', and the load balancer' : ''}`;
  },
  async confirm(deployment, spec, seen) {
    const stack = (await deployment.stack(spec.group)).refresh();
    for (let i = 0; i < stack.serverPorts.length; i++) {
      seen.processGone(`${spec.group} server ${i}`, stack.servers[i]);
      await seen.portDown(`${spec.group} server ${i}`, stack.serverPorts[i]!);
    }
    if (stack.options.loadBalancer) {
      seen.processGone(`${spec.group}'s load balancer`, stack.balancer);
      await seen.portDown(`${spec.group}'s load balancer`, stack.agentFacingPort);
    }
  },
  heal: (deployment, spec) => healServersOf(deployment, spec.group),
  verify: (deployment, spec, seen) => groupHealthy(deployment, spec.group, seen),
});
