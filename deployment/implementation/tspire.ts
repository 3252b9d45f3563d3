/** The bundled TypeScript SPIRE: bin/tspire-server.js and bin/tspire-agent.js run by this Node. */
import { join } from 'node:path';
import { AgentStateStore } from '../../identity-core/agent/agent-state-store.js';
import { packageRoot } from '../host/package-root.js';
import { jsonRecord } from './log-record.js';
import type { SpireImplementation } from './implementation.js';
import { ServerAdmin } from './server-admin.js';
import { renderAgentConfig, renderServerConfig } from './spire-configs.js';

export function binPath(name: 'tspire-server' | 'tspire-agent'): string {
  return join(packageRoot(), 'bin', `${name}.js`);
}

/**
 * V8 flags per role. The agent allocates briskly but holds little (about 25 MB of live heap serving
 * 100 streams); V8's default young generation grew to ~32 MB there and kept the agent near 150 MB RSS.
 * A 1 MB semi-space brings it to ~117 MB (bench/footprint.ts). The server keeps the default for
 * throughput. bin/tspire-agent.js's shebang carries the same flag for direct runs.
 */
function nodeFlags(role: 'server' | 'agent'): string[] {
  return role === 'agent' ? ['--max-semi-space-size=1'] : [];
}

export const tspire: SpireImplementation = {
  name: 'tspire',
  program(role) {
    const name = role === 'server' ? 'tspire-server' : 'tspire-agent';
    return { command: process.execPath, prefix: [...nodeFlags(role), binPath(name)], name };
  },
  unavailable: (database) =>
    database === 'sqlite3'
      ? 'the bundled SPIRE has no sqlite3 datastore (its embedded one is PGlite)'
      : undefined,
  embeddedDatabase: (groupDir) => ({ type: 'pglite', directory: join(groupDir, 'datastore') }),
  renderServerConfig,
  renderAgentConfig,
  async storedAgentIdentity(dataDir) {
    const state = await new AgentStateStore(dataDir).load();
    return state
      ? {
          spiffeId: state.spiffeId,
          chain: state.certificateChain,
          key: state.privateKeyPkcs8,
          bundleRoots: state.bundleAuthorities,
        }
      : undefined;
  },
  forgetAgentIdentity: (dataDir) => new AgentStateStore(dataDir).clear(),
  entryCacheReloadFailedAt(logLine) {
    const record = jsonRecord(logLine);
    return record?.msg === 'Failed to reload entry cache' && typeof record.time === 'number'
      ? record.time
      : undefined;
  },
  keepsRevokedUpstreamJwtKeys: false,
  admin: (socketPath) => new ServerAdmin(socketPath),
};
