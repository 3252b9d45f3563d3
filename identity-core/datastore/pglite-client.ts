import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { DatastoreError } from './errors.js';
import type { SqlClient } from './sql-client.js';

function normalize<T>(rows: unknown[]): T[] {
  // PGlite returns int8 as bigint; the records use numbers for Unix seconds and revisions.
  return rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(row as Record<string, unknown>))
      out[key] = typeof value === 'bigint' ? Number(value) : value;
    return out as T;
  });
}

function clientOver(target: PGlite | Transaction, db: PGlite): SqlClient {
  return {
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      try {
        return normalize<T>((await target.query(sql, params)).rows);
      } catch (error) {
        throw new DatastoreError((error as Error).message, { cause: error });
      }
    },
    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      if (target !== db) return fn(this);
      return db.transaction((tx) => fn(clientOver(tx, db)));
    },
    async close(): Promise<void> {
      await db.close();
    },
  };
}

/**
 * The embedded default: PostgreSQL compiled to WASM, persisted in a directory, no install needed.
 * One connection, so PGlite runs queries and transactions one at a time.
 */
export async function openPglite(directory: string): Promise<SqlClient> {
  mkdirSync(directory, { recursive: true });
  const db = await PGlite.create(directory, { relaxedDurability: false });
  return clientOver(db, db);
}
