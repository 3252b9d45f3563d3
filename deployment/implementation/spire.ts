/**
 * Real SPIRE from the pinned build in tools/bin (tools/install.sh builds spire-server with cgo, for
 * its sqlite3 datastore), run from the same configs as the bundled one, logging JSON.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../host/package-root.js';
import type { SpireImplementation } from './implementation.js';
import { jsonRecord } from './log-record.js';
import { ServerAdmin } from './server-admin.js';
import { renderAgentConfig, renderServerConfig, type DatabaseChoice } from './spire-configs.js';
import { forgetSpireAgentIdentity, readSpireAgentIdentity } from './spire-agent-storage.js';

const programPath = (name: string) => join(packageRoot(), 'tools', 'bin', name);

/**
 * Messages with which SPIRE v1.13.3 reports a failed entry cache reload: its default full-reload
 * cache, and the events-based one (experimental.events_based_cache) incrementally or in full.
 */
const RELOAD_FAILED = new Set([
  'Failed to reload entry cache',
  'Failed to update entry cache',
  'Failed to full refresh entry cache',
]);

/** The Go build settings line a cgo build carries in its embedded build info. */
const CGO_MARK = Buffer.from('build\tCGO_ENABLED=1\n');

/** Whether the binary was built with cgo, from the build info Go embeds in it; read once per path. */
const cgoBuilds = new Map<string, boolean>();
function builtWithCgo(path: string): boolean {
  const known = cgoBuilds.get(path);
  if (known !== undefined) return known;
  // Read in chunks (the binary is ~100 MB), overlapping by the mark's length so none is split.
  const fd = openSync(path, 'r');
  const chunk = Buffer.alloc(8 * 1024 * 1024);
  let found = false;
  try {
    for (let position = 0; !found;) {
      const read = readSync(fd, chunk, 0, chunk.length, position);
      if (read === 0) break;
      found = chunk.subarray(0, read).includes(CGO_MARK);
      if (read < chunk.length) break;
      position += read - CGO_MARK.length;
    }
  } finally {
    closeSync(fd);
  }
  cgoBuilds.set(path, found);
  return found;
}

/**
 * SPIRE's PostgreSQL driver (lib/pq) requires TLS unless the URL says otherwise, where the bundled
 * SPIRE's (node-postgres) connects without it: a URL that does not choose connects without TLS in
 * both, as the deployment's own loopback PostgreSQL (which has no TLS) needs.
 */
function withoutTlsUnlessAsked(database: DatabaseChoice): DatabaseChoice {
  if (database.type !== 'postgres') return database;
  const plain = (url: string) => {
    const parsed = new URL(url);
    if (!parsed.searchParams.has('sslmode')) parsed.searchParams.set('sslmode', 'disable');
    return parsed.toString();
  };
  return {
    ...database,
    connectionString: plain(database.connectionString),
    ...(database.roConnectionString ? { roConnectionString: plain(database.roConnectionString) } : {}),
  };
}

export const realSpire: SpireImplementation = {
  name: 'spire',
  program(role) {
    const name = role === 'server' ? 'spire-server' : 'spire-agent';
    return { command: programPath(name), prefix: [], name };
  },
  unavailable(database) {
    for (const name of ['spire-server', 'spire-agent'])
      if (!existsSync(programPath(name)))
        return `real SPIRE is not built here (no ${programPath(name)}): run tools/install.sh (needs Go)`;
    if (database === 'pglite') return 'real SPIRE has no PGlite datastore: its embedded one is sqlite3';
    if (database === 'sqlite3' && !builtWithCgo(programPath('spire-server')))
      return `${programPath('spire-server')} was built without cgo, so it has no sqlite3 datastore for "embedded": remove it and run tools/install.sh, or use datastore "managed" or { postgres: URL }`;
    return undefined;
  },
  embeddedDatabase: (groupDir) => ({
    type: 'sqlite3',
    file: join(groupDir, 'server-data', 'datastore.sqlite3'),
  }),
  renderServerConfig: (choices) =>
    renderServerConfig({ logFormat: 'json', ...choices, database: withoutTlsUnlessAsked(choices.database) }),
  renderAgentConfig: (choices) => renderAgentConfig({ logFormat: 'json', ...choices }),
  storedAgentIdentity: readSpireAgentIdentity,
  forgetAgentIdentity: forgetSpireAgentIdentity,
  entryCacheReloadFailedAt(logLine) {
    const record = jsonRecord(logLine);
    if (typeof record?.msg !== 'string' || !RELOAD_FAILED.has(record.msg)) return undefined;
    const time = typeof record.time === 'string' ? Date.parse(record.time) : NaN;
    return Number.isNaN(time) ? undefined : time;
  },
  keepsRevokedUpstreamJwtKeys: true,
  admin: (socketPath) => new ServerAdmin(socketPath),
};
