import pg from 'pg';
import { DatastoreError, DatastoreUnavailableError } from './errors.js';
import type { SqlClient } from './sql-client.js';

// bigint columns (Unix seconds, revisions) fit in a JS number; read them as numbers, not strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
]);

/** Connection-level failures become DatastoreUnavailableError; SQL errors keep their message. */
export function translatePgError(error: unknown): Error {
  const e = error as { code?: string; message?: string };
  const message = e.message ?? String(error);
  if (
    (e.code && (UNAVAILABLE_CODES.has(e.code) || e.code.startsWith('08'))) ||
    /timeout|terminat|Connection terminated|connect/i.test(message)
  ) {
    return new DatastoreUnavailableError(`datastore unavailable: ${message}`, { cause: error });
  }
  return new DatastoreError(message, { cause: error });
}

type Queryable = pg.Pool | pg.PoolClient;

function clientOver(target: Queryable, inTransaction: boolean, pool: pg.Pool): SqlClient {
  return {
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      try {
        return (await target.query(sql, params)).rows as T[];
      } catch (error) {
        throw translatePgError(error);
      }
    },
    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      if (inTransaction) return fn(this);
      let connection: pg.PoolClient;
      try {
        connection = await pool.connect();
      } catch (error) {
        throw translatePgError(error);
      }
      try {
        await connection.query('BEGIN');
        const result = await fn(clientOver(connection, true, pool));
        await connection.query('COMMIT');
        return result;
      } catch (error) {
        await connection.query('ROLLBACK').catch(() => undefined);
        throw error instanceof DatastoreError ? error : translatePgError(error);
      } finally {
        connection.release();
      }
    },
    async close(): Promise<void> {
      await pool.end();
    },
  };
}

/**
 * PostgreSQL through a pg pool. Timeouts are short so that a dead database fails calls within
 * seconds, as SPIRE's do, instead of hanging agents' syncs.
 */
export function openPostgres(connectionString: string): SqlClient {
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    connectionTimeoutMillis: 3000,
    query_timeout: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return clientOver(pool, false, pool);
}
