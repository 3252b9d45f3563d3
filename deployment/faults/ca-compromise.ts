/**
 * ca-compromise: every upstream server's active X.509 authority (HA servers each have their own, all
 * in the shared bundle) declared compromised. Injecting rotates each server away from its authority
 * and taints it, so agents and downstreams re-issue everything that chained to it; healing revokes
 * it, once nothing depends on it any more.
 */
import { agentTrust } from '../stack/agent-states.js';
import type { Deployment } from '../deployment.js';
import type { ServerAdmin } from '../implementation/server-admin.js';
import {
  authorityStep,
  bundleAuthoritiesOf,
  x509AuthorityView,
  type X509AuthorityView,
} from '../authority-rotation.js';
import { pollUntilDone } from '../host/poll.js';
import { verifyingRoots } from '../probes/workload-fetch.js';
import { withWorkloadFetcher } from '../probes/workload-fetcher.js';
import { defineFault, FaultRefused } from './fault.js';
import { groupFaultSpec, groupShape, kindInGroup } from './fault-group.js';

function describeState(state: X509AuthorityView): string {
  const tainted = [...state.bundle].filter(([, t]) => t).map(([id]) => id);
  return `active ${state.active ?? 'none'}, prepared ${state.prepared ?? 'none'}, old ${state.old ?? 'none'}, tainted in the bundle ${tainted.join(', ') || 'none'}`;
}

/** What of `roots` some agent or downstream server does not trust yet, or undefined once all do. */
async function untrusted(deployment: Deployment, roots: string[]): Promise<string | undefined> {
  const missing: string[] = [];
  for (const [name, stack] of Object.entries((await deployment.identityStacks()).downstreams)) {
    const bundle = await bundleAuthoritiesOf(stack.admin(), 'x509').catch(() => new Map<string, boolean>());
    if (!roots.every((id) => bundle.has(id))) missing.push(`${name}'s server`);
  }
  for (const agent of await agentTrust(deployment))
    if (!roots.every((id) => agent.roots.has(id))) missing.push(agent.agent);
  return missing.length > 0 ? `${missing.join(', ')} not yet trusting ${roots.join(', ')}` : undefined;
}

/**
 * Rotates each upstream server away from its active authority and taints that, step by step, so a
 * retry finishes what an earlier attempt began. `recorded` holds the authorities of an earlier
 * attempt; otherwise the active ones are handed to `record` before anything changes, so that a
 * retry, the heal and the watchdog all know which authorities are the bad ones. The new authorities
 * are prepared first and activated only once every agent and downstream trusts them, as SPIRE asks
 * of an operator: an agent shown a server certificate under a root it has not seen cannot sync, so
 * it never learns of the taint, keeps its SVID under the bad root and is locked out at revocation.
 */
async function compromiseAuthorities(
  deployment: Deployment,
  recorded: string[] | undefined,
  record: (authorities: string[]) => void,
  timeoutMs = 60_000,
): Promise<string> {
  const servers = (await deployment.identityStacks()).upstream.admins();
  let compromised = recorded;
  if (!compromised) {
    const states = await Promise.all(servers.map((server) => x509AuthorityView(server)));
    compromised = states.map((state, i) => {
      if (!state.active) throw new Error(`upstream server ${i} has no active X.509 authority to compromise`);
      return state.active;
    });
    record(compromised);
  }
  const coming: string[] = [];
  for (const [i, server] of servers.entries()) {
    const state = await x509AuthorityView(server);
    if (state.active === compromised[i])
      coming.push(await authorityStep(server, 'x509', 'prepare', undefined, state));
  }
  if (coming.length > 0)
    await pollUntilDone(
      () => untrusted(deployment, coming),
      Date.now() + timeoutMs,
      (waited) => `${waited} after ${timeoutMs / 1000} s: not activating them`,
    );
  const done: string[] = [];
  for (const [i, server] of servers.entries()) {
    const bad = compromised[i]!;
    let state = await x509AuthorityView(server);
    if (state.active === bad) {
      if (!state.prepared)
        throw new Error(`upstream server ${i} lost its prepared X.509 authority (${describeState(state)})`);
      await authorityStep(server, 'x509', 'activate', state.prepared, state);
      state = await x509AuthorityView(server);
    }
    // Revoked: out of the bundle, whether or not the old slot still names it (SPIRE keeps it there).
    if (!state.bundle.has(bad)) {
      done.push(`server ${i}: ${bad} already revoked`);
      continue;
    }
    if (state.old !== bad)
      throw new Error(
        `upstream server ${i}: X.509 authority ${bad} is neither active nor the old one (${describeState(state)})`,
      );
    await authorityStep(server, 'x509', 'taint', bad, state);
    done.push(`server ${i}: ${bad} tainted, ${state.active} active`);
  }
  return `X.509 authorities declared compromised: ${done.join('; ')}`;
}

/** Whether every upstream server has rotated away from an authority now tainted in the bundle. */
async function compromiseSeen(deployment: Deployment): Promise<{ seen: boolean; detail: string }> {
  const servers = (await deployment.identityStacks()).upstream.admins();
  const problems: string[] = [];
  const seen: string[] = [];
  for (const [i, server] of servers.entries()) {
    const state = await x509AuthorityView(server);
    if (!state.old || !state.bundle.get(state.old) || state.active === state.old)
      problems.push(`upstream server ${i} has no tainted old authority (${describeState(state)})`);
    else seen.push(`upstream server ${i}: ${state.old} tainted, ${state.active} active`);
  }
  return problems.length > 0
    ? { seen: false, detail: problems.join('; ') }
    : { seen: true, detail: seen.join('; ') };
}

/**
 * Revokes the compromised authorities once every downstream has rotated away from them (a downstream
 * marks an upstream root tainted in its own bundle only then), every agent has renewed its own SVID
 * away from them, and every workload served holds an SVID that no longer chains to them, as an
 * operator would: no server is left signing under a root about to vanish, and no agent or workload
 * loses its identity to the revocation itself. Nothing to do when the injection never got as far
 * as rotating.
 */
async function revokeCompromised(
  deployment: Deployment,
  compromised: string[] | undefined,
  timeoutMs = 60_000,
): Promise<string> {
  if (!compromised) return 'no authority was declared compromised: nothing to revoke';
  const { upstream, downstreams } = await deployment.identityStacks();
  const toRevoke: { server: ServerAdmin; authority: string; state: X509AuthorityView }[] = [];
  const notes: string[] = [];
  for (const [i, server] of upstream.admins().entries()) {
    const bad = compromised[i]!;
    const state = await x509AuthorityView(server);
    if (state.active === bad)
      notes.push(`server ${i}: ${bad} still active, the injection never rotated away from it`);
    else if (!state.bundle.has(bad)) notes.push(`server ${i}: ${bad} already revoked`);
    else if (state.old !== bad)
      throw new Error(
        `upstream server ${i}: X.509 authority ${bad} is in the bundle but not the old one (${describeState(state)})`,
      );
    else {
      await authorityStep(server, 'x509', 'taint', bad, state);
      toRevoke.push({ server, authority: bad, state });
    }
  }
  const bad = toRevoke.map((r) => r.authority);
  const deadline = Date.now() + timeoutMs;
  const waitUntil = (pending: () => Promise<string | undefined>) =>
    pollUntilDone(
      pending,
      deadline,
      (waited) => `${waited} after ${timeoutMs / 1000} s: not revoking ${bad.join(', ')} yet`,
    );
  for (const [name, stack] of Object.entries(downstreams))
    await waitUntil(async () => {
      const bundle = await bundleAuthoritiesOf(stack.admin(), 'x509').catch(() => undefined);
      return bundle && bad.every((id) => bundle.get(id) !== false)
        ? undefined
        : `${name} has not rotated away from ${bad.join(', ')}`;
    });
  // An agent whose own SVID still chains to a revoked root cannot reach its server again.
  await waitUntil(async () => {
    const still = (await agentTrust(deployment))
      .filter((agent) => agent.svidAuthorities.some((id) => bad.includes(id)))
      .map((agent) => agent.agent);
    return still.length > 0
      ? `${still.join(', ')} still hold an agent SVID under ${bad.join(', ')}`
      : undefined;
  });
  const slots = await deployment.workloads();
  await withWorkloadFetcher((fetcher) =>
    waitUntil(async () => {
      const still = (await fetcher.workloadSvids(slots))
        .filter(({ svid }) => svid && verifyingRoots(svid).some((root) => bad.includes(root)))
        .map(({ slot }) => slot.spiffeId);
      return still.length > 0 ? `${still.join(', ')} still hold SVIDs under ${bad.join(', ')}` : undefined;
    }),
  );
  for (const { server, authority, state } of toRevoke) {
    // The state from before the waits: the compromised authority was the old one then.
    await authorityStep(server, 'x509', 'revoke', authority, state);
    notes.push(`${authority} revoked`);
  }
  return `X.509 authorities: ${notes.join('; ')}`;
}

/** Whether no bundle of the deployment holds a tainted X.509 authority any more. */
async function bundlesClean(deployment: Deployment): Promise<{ clean: boolean; detail: string }> {
  const { upstream, downstreams } = await deployment.identityStacks();
  const problems: string[] = [];
  for (const [name, stack] of [['upstream', upstream] as const, ...Object.entries(downstreams)]) {
    const bundle = await bundleAuthoritiesOf(stack.admin(), 'x509').catch((error: Error) => {
      problems.push(`${name}'s bundle cannot be read: ${error.message}`);
      return undefined;
    });
    const tainted = [...(bundle ?? [])].filter(([, t]) => t).map(([id]) => id);
    if (tainted.length > 0) problems.push(`${name}'s bundle still holds tainted ${tainted.join(', ')}`);
  }
  return problems.length > 0
    ? { clean: false, detail: problems.join('; ') }
    : { clean: true, detail: 'no tainted X.509 authority left in any bundle' };
}

export const caCompromise = defineFault({
  kind: 'ca-compromise',
  spec: groupFaultSpec('ca-compromise'),
  describe: kindInGroup,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    if (g.name !== 'upstream')
      throw new FaultRefused(
        `${g.name}'s X.509 authority is an intermediate signed by the upstream: as in SPIRE, a downstream server refuses to taint it (bundles hold only roots); compromise the root instead (group: upstream), which every downstream then rotates away from`,
      );
    const downstreams = deployment.topology.downstreams.map((d) => d.name);
    return {
      targets: g.serverPorts.map(
        (_, i) =>
          `the active X.509 authority of upstream server ${i}${downstreams.length ? ` (and the intermediates of ${downstreams.join(', ')} it signed)` : ''}`,
      ),
      effect: 'authority',
      groups: ['upstream', ...downstreams],
    };
  },
  inject: (deployment, _spec, run) =>
    compromiseAuthorities(deployment, run.authorities, run.recordAuthorities),
  async confirm(deployment, _spec, seen) {
    const { seen: compromised, detail } = await compromiseSeen(deployment);
    seen.note(compromised, detail);
  },
  heal: (deployment, _spec, run) => revokeCompromised(deployment, run.authorities),
  async verify(deployment, _spec, seen) {
    const { clean, detail } = await bundlesClean(deployment);
    seen.note(clean, detail);
  },
});
