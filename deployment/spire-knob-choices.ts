/** A topology's `spire:` knobs as the server and agent config choices the configs are rendered from. */
import type { SpireKnobs } from './topology/topology.js';
import type { AgentKnobChoices, ServerKnobChoices } from './implementation/spire-configs.js';

/** `knobs` is absent in a plan written before topologies had them: SPIRE's defaults then, by omission. */
export function spireKnobChoices(knobs: SpireKnobs | undefined): {
  serverKnobs?: ServerKnobChoices;
  agentKnobs?: AgentKnobChoices;
} {
  if (!knobs) return {};
  const { server, agent } = knobs;
  return {
    serverKnobs: {
      maxAttestedNodeInfoStaleness: `${server.max_attested_node_info_staleness}s`,
      cacheReloadInterval: `${server.cache_reload_interval}s`,
    },
    agentKnobs: {
      rebootstrapMode: agent.rebootstrap_mode,
      rebootstrapDelay: `${agent.rebootstrap_delay}s`,
      ...(agent.retry_bootstrap !== undefined ? { retryBootstrap: agent.retry_bootstrap } : {}),
    },
  };
}
