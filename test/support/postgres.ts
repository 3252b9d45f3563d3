import pg from 'pg';
import { randomBytes } from 'node:crypto';

const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  connectionString: string;
  drop(): Promise<void>;
}

/** Whether the test PostgreSQL answers; the reason is printed by tests that skip without it. */
export async function postgresAvailable(): Promise<{ ok: boolean; reason?: string }> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true };
  } catch (error) {
    return {
      ok: false,
      reason: `PostgreSQL at ${ADMIN_URL} is unreachable (${(error as Error).message}); skipping PostgreSQL tests`,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh, uniquely named database on the test server, dropped by `drop()`. */
export async function createTestDatabase(prefix = 'sd_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    connectionString: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
