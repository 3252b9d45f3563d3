import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_POSTGRES_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ScratchDatabase {
  connectionString: string;
  drop(): Promise<void>;
}

/** Whether a PostgreSQL server answers at `adminUrl`; the reason when it does not. */
export async function postgresReachable(
  adminUrl = DEFAULT_POSTGRES_ADMIN_URL,
): Promise<{ ok: boolean; reason?: string }> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `PostgreSQL at ${adminUrl} is unreachable (${(error as Error).message})` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh, uniquely named database on the server at `adminUrl`, removed (connections and all) by `drop()`. */
export async function createScratchDatabase(
  prefix: string,
  adminUrl = DEFAULT_POSTGRES_ADMIN_URL,
): Promise<ScratchDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix))
    throw new Error(`invalid database name prefix ${JSON.stringify(prefix)}`);
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    connectionString: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
