/** upstream-outage: the downstream's relay to its upstream stopped: its servers and upstream agent cannot reach it. */
import { z } from 'zod';
import { portAcceptsConnections } from '../host/free-port.js';
import { defineFault, FaultRefused } from './fault.js';
import { groupName, groupShape } from './fault-group.js';

export const upstreamOutage = defineFault({
  kind: 'upstream-outage',
  spec: z.strictObject({
    kind: z.literal('upstream-outage'),
    downstream: groupName.refine((name) => name !== 'upstream', {
      error: 'upstream-outage cuts a downstream off its upstream: name a downstream',
    }),
  }),
  describe: (spec) => `upstream-outage (${spec.downstream} cut off)`,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.downstream);
    const relay = deployment.plan.downstreams[g.name]!.upstreamRelay;
    if (relay === undefined)
      throw new FaultRefused(
        `downstream ${g.name} dials its upstream directly (a deployment planned before relays existed): nothing to cut without stopping the upstream itself`,
      );
    return {
      targets: [`${g.name}'s relay to the upstream (127.0.0.1:${relay})`],
      effect: 'none',
      groups: [g.name],
    };
  },
  async inject(deployment, spec) {
    const stack = (await deployment.stack(spec.downstream)).refresh();
    await stack.stopRelay();
    return `${spec.downstream}'s relay to the upstream stopped`;
  },
  async confirm(deployment, spec, seen) {
    const stack = (await deployment.stack(spec.downstream)).refresh();
    seen.processGone(`${spec.downstream}'s upstream relay`, stack.relay);
    await seen.portDown(`${spec.downstream}'s upstream relay`, stack.relayPort!);
  },
  async heal(deployment, spec) {
    const stack = (await deployment.stack(spec.downstream)).refresh();
    await stack.ensureRelay();
    if (!stack.upstreamAgent?.isRunning()) await stack.ensureDownstream();
    return `${spec.downstream}'s relay to the upstream running`;
  },
  async verify(deployment, spec, seen) {
    const stack = (await deployment.stack(spec.downstream)).refresh();
    const problems = seen.problems;
    if (!stack.relay?.isRunning()) problems.push(`${spec.downstream}'s upstream relay is not running`);
    else if (!(await portAcceptsConnections(stack.relayPort!)))
      problems.push(
        `${spec.downstream}'s upstream relay refuses connections on 127.0.0.1:${stack.relayPort}`,
      );
    if (!stack.upstreamAgent?.isRunning())
      problems.push(`${spec.downstream}'s upstream agent is not running`);
    if (problems.length === 0) seen.seen.push(`${spec.downstream} reaches its upstream again`);
  },
});
