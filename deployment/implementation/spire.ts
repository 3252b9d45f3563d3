/**
 * Real SPIRE from the pinned build in tools/bin: it runs from the same configs, which is what the
 * benchmarks compare against. Topologies refuse it until its agents' stored identity can be read.
 */
import { join } from 'node:path';
import { packageRoot } from '../host/package-root.js';
import type { SpireImplementation } from './implementation.js';
import { ServerAdmin } from './server-admin.js';
import { renderAgentConfig, renderServerConfig } from './spire-configs.js';

const unsupported = (): never => {
  throw new Error("reading a real SPIRE agent's stored identity is not supported yet");
};

export const realSpire: SpireImplementation = {
  name: 'spire',
  program(role) {
    const name = role === 'server' ? 'spire-server' : 'spire-agent';
    return { command: join(packageRoot(), 'tools', 'bin', name), prefix: [], name };
  },
  renderServerConfig,
  renderAgentConfig,
  storedAgentIdentity: async () => unsupported(),
  forgetAgentIdentity: async () => unsupported(),
  admin: (socketPath) => new ServerAdmin(socketPath),
};
