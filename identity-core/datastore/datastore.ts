import { BundleRepository } from './bundle-repository.js';
import { CaJournalRepository } from './ca-journal-repository.js';
import { EntryRepository } from './entry-repository.js';
import { JoinTokenRepository } from './join-token-repository.js';
import { migrate } from './migrations.js';
import { NodeRepository } from './node-repository.js';
import { openPglite } from './pglite-client.js';
import { openPostgres } from './postgres-client.js';
import type { SqlClient } from './sql-client.js';

export interface DatastoreConfig {
  /** `postgres`: any PostgreSQL-wire server by URL; `pglite`: the embedded default, a directory. */
  databaseType: 'postgres' | 'pglite';
  connectionString: string;
  /**
   * A read-only copy (SPIRE's `ro_connection_string`, e.g. a hot standby): the schema is the
   * primary's to migrate, so none is attempted here.
   */
  readOnly?: boolean;
}

export interface Repositories {
  entries: EntryRepository;
  nodes: NodeRepository;
  joinTokens: JoinTokenRepository;
  bundles: BundleRepository;
  caJournals: CaJournalRepository;
}

export interface Datastore extends Repositories {
  sql: SqlClient;
  /** Runs `fn` with repositories bound to one transaction: all of its writes land, or none. */
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

function repositories(sql: SqlClient): Repositories {
  return {
    entries: new EntryRepository(sql),
    nodes: new NodeRepository(sql),
    joinTokens: new JoinTokenRepository(sql),
    bundles: new BundleRepository(sql),
    caJournals: new CaJournalRepository(sql),
  };
}

/** Connects to the configured backend and brings its schema up to date. */
export async function openDatastore(config: DatastoreConfig): Promise<Datastore> {
  const sql =
    config.databaseType === 'pglite'
      ? await openPglite(config.connectionString)
      : openPostgres(config.connectionString);
  try {
    if (!config.readOnly) await migrate(sql);
  } catch (error) {
    await sql.close().catch(() => undefined);
    throw error;
  }
  return {
    ...repositories(sql),
    sql,
    transaction: (fn) => sql.transaction((tx) => fn(repositories(tx))),
    close: () => sql.close(),
  };
}
