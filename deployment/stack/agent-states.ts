/**
 * What each agent of a deployment has stored in its data directory: the roots of the bundle it last
 * saw and the authorities its own SVID chains to. An operator rotating a root needs both: agents must
 * trust a new root before a server signs from it, and must have left a root before it is revoked.
 */
import { authorityKeyIds } from '../../identity-core/agent/chain-authorities.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import type { Deployment } from '../deployment.js';

export interface AgentTrust {
  /** e.g. "east agent-0", "east upstream agent". */
  agent: string;
  /** Authority ids of the roots in the agent's stored bundle. */
  roots: Set<string>;
  /** Authority ids the agent's own SVID chains to. */
  svidAuthorities: string[];
}

/** Every agent with a stored identity; an agent that never attested has nothing stored and is left out. */
export async function agentTrust(deployment: Deployment): Promise<AgentTrust[]> {
  const { upstream, downstreams } = await deployment.identityStacks();
  const agents = [['upstream', upstream] as const, ...Object.entries(downstreams)].flatMap(([group, stack]) =>
    stack.agentDataDirs().map(({ agent, dir, implementation }) => ({
      agent: `${group} ${agent}`,
      dir,
      implementation,
    })),
  );
  const states = await Promise.all(
    agents.map(async ({ agent, dir, implementation }) => ({
      agent,
      state: await implementation.storedAgentIdentity(dir),
    })),
  );
  return states.flatMap(({ agent, state }) =>
    state
      ? [
          {
            agent,
            roots: new Set(state.bundleRoots.map((der) => x509AuthorityId(der))),
            svidAuthorities: authorityKeyIds(state.chain),
          },
        ]
      : [],
  );
}
