import { DatastoreError } from './errors.js';
import type { SqlClient } from './sql-client.js';

/**
 * Forward-only schema changes, applied in order, each in its own transaction and recorded in
 * `migrations`. Never edit a released migration: add the next one.
 */
const MIGRATIONS: { version: number; description: string; sql: string }[] = [
  {
    version: 1,
    description: 'entries, selectors, DNS names, attested nodes, join tokens, bundles, CA journals',
    sql: `
      CREATE TABLE registered_entries (
        entry_id text PRIMARY KEY,
        spiffe_id text NOT NULL,
        parent_id text NOT NULL,
        x509_svid_ttl integer NOT NULL DEFAULT 0,
        jwt_svid_ttl integer NOT NULL DEFAULT 0,
        downstream boolean NOT NULL DEFAULT false,
        admin boolean NOT NULL DEFAULT false,
        hint text NOT NULL DEFAULT '',
        expiry bigint NOT NULL DEFAULT 0,
        created_at bigint NOT NULL,
        revision_number bigint NOT NULL DEFAULT 0
      );
      CREATE INDEX registered_entries_parent_id ON registered_entries (parent_id);
      CREATE INDEX registered_entries_spiffe_id ON registered_entries (spiffe_id);
      CREATE TABLE selectors (
        entry_id text NOT NULL REFERENCES registered_entries (entry_id) ON DELETE CASCADE,
        type text NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (entry_id, type, value)
      );
      CREATE TABLE dns_names (
        entry_id text NOT NULL REFERENCES registered_entries (entry_id) ON DELETE CASCADE,
        position integer NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (entry_id, position)
      );
      CREATE TABLE attested_node_entries (
        spiffe_id text PRIMARY KEY,
        data_type text NOT NULL,
        serial_number text NOT NULL,
        expires_at bigint NOT NULL,
        new_serial_number text NOT NULL DEFAULT '',
        new_expires_at bigint NOT NULL DEFAULT 0,
        can_reattest boolean NOT NULL DEFAULT false
      );
      CREATE TABLE node_selectors (
        spiffe_id text NOT NULL REFERENCES attested_node_entries (spiffe_id) ON DELETE CASCADE,
        type text NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (spiffe_id, type, value)
      );
      CREATE TABLE join_tokens (
        token text PRIMARY KEY,
        expiry bigint NOT NULL
      );
      CREATE TABLE bundles (
        trust_domain text PRIMARY KEY,
        data jsonb NOT NULL
      );
      CREATE TABLE ca_journals (
        id serial PRIMARY KEY,
        data jsonb NOT NULL,
        active_x509_authority_id text NOT NULL DEFAULT ''
      );
      CREATE INDEX ca_journals_active_x509_authority_id ON ca_journals (active_x509_authority_id);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;
/** Serializes migrations when several servers start against one database. */
const MIGRATION_LOCK = 7_233_081;

export async function migrate(sql: SqlClient): Promise<void> {
  await sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const applied = await tx.query<{ version: number }>('SELECT version FROM migrations ORDER BY version');
    const newest = applied.at(-1)?.version ?? 0;
    if (newest > SCHEMA_VERSION) {
      throw new DatastoreError(
        `the database schema is at version ${newest}, newer than this build knows (${SCHEMA_VERSION}); upgrade tspire-server`,
      );
    }
    for (const migration of MIGRATIONS.filter((m) => m.version > newest)) {
      // One statement per query: PGlite's extended protocol takes a single statement at a time.
      for (const statement of migration.sql
        .split(';')
        .map((s) => s.trim())
        .filter(Boolean))
        await tx.query(statement);
      await tx.query('INSERT INTO migrations (version, description) VALUES ($1, $2)', [
        migration.version,
        migration.description,
      ]);
    }
  });
}
