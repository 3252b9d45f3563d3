/** servers-down: the lowest-numbered `count` servers of the group stopped; fewer than all keeps issuance up. */
import { z } from 'zod';
import { defineFault, FaultRefused } from './fault.js';
import { groupName, groupShape, serverTarget } from './fault-group.js';
import { groupHealthy, healServersOf } from './group-recovery.js';

export const serversDown = defineFault({
  kind: 'servers-down',
  spec: z.strictObject({
    kind: z.literal('servers-down'),
    group: groupName,
    count: z
      .number({ error: 'expected how many servers to stop' })
      .int({ error: 'expected a whole number of servers' })
      .min(1, { error: 'stop at least one server' }),
  }),
  describe: (spec) => `servers-down (${spec.count} of ${spec.group}'s servers)`,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    const n = g.serverPorts.length;
    if (spec.count > n)
      throw new FaultRefused(`${g.name} has ${n} server(s): ${spec.count} cannot be stopped`);
    if (spec.count === n)
      throw new FaultRefused(
        `stopping all ${n} of ${g.name}'s servers is a server-loss: use kind server-loss (servers-down leaves at least one up)`,
      );
    return {
      targets: Array.from({ length: spec.count }, (_, i) => serverTarget(g, i)),
      // Without a balancer every agent dials the first server, which is among the stopped ones.
      effect: g.balancer ? 'none' : 'issuance',
      groups: [g.name],
    };
  },
  async inject(deployment, spec) {
    const stack = (await deployment.stack(spec.group)).refresh();
    for (let i = 0; i < spec.count; i++) await stack.servers[i]?.stop();
    return `${spec.count} of ${stack.serverPorts.length} ${spec.group} servers stopped`;
  },
  async confirm(deployment, spec, seen) {
    const stack = (await deployment.stack(spec.group)).refresh();
    for (let i = 0; i < spec.count; i++) {
      seen.processGone(`${spec.group} server ${i}`, stack.servers[i]);
      await seen.portDown(`${spec.group} server ${i}`, stack.serverPorts[i]!);
    }
  },
  heal: (deployment, spec) => healServersOf(deployment, spec.group),
  verify: (deployment, spec, seen) => groupHealthy(deployment, spec.group, seen),
});
