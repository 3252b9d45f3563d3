/** lb-down: the group's load balancer stopped. */
import { defineFault, FaultRefused } from './fault.js';
import { balancerTarget, groupFaultSpec, groupShape, kindInGroup } from './fault-group.js';
import { groupHealthy, healServersOf } from './group-recovery.js';

export const lbDown = defineFault({
  kind: 'lb-down',
  spec: groupFaultSpec('lb-down'),
  describe: kindInGroup,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    if (!g.balancer)
      throw new FaultRefused(
        g.name === 'upstream'
          ? 'the upstream servers have no load balancer (upstream.loadBalancer is false)'
          : `downstream ${g.name} has no load balancer: a downstream runs one server`,
      );
    return { targets: [balancerTarget(g)], effect: 'issuance', groups: [g.name] };
  },
  async inject(deployment, spec) {
    const stack = (await deployment.stack(spec.group)).refresh();
    await stack.balancer?.stop();
    return `${spec.group}'s load balancer stopped`;
  },
  async confirm(deployment, spec, seen) {
    const stack = (await deployment.stack(spec.group)).refresh();
    seen.processGone(`${spec.group}'s load balancer`, stack.balancer);
    await seen.portDown(`${spec.group}'s load balancer`, stack.agentFacingPort);
  },
  heal: (deployment, spec) => healServersOf(deployment, spec.group),
  verify: (deployment, spec, seen) => groupHealthy(deployment, spec.group, seen),
});
