import {
  createScratchDatabase,
  postgresReachable,
  type ScratchDatabase,
} from '../../deployment/postgres/scratch-database.js';

const ADMIN_URL = process.env.TEST_POSTGRES_URL;

export type TestDatabase = ScratchDatabase;

/** Whether the test PostgreSQL answers; the reason is printed by tests that skip without it. */
export async function postgresAvailable(): Promise<{ ok: boolean; reason?: string }> {
  const status = await postgresReachable(ADMIN_URL);
  return status.ok ? status : { ok: false, reason: `${status.reason}; skipping PostgreSQL tests` };
}

/** A fresh, uniquely named database on the test server, dropped by `drop()`. */
export function createTestDatabase(prefix = 'sd_test'): Promise<TestDatabase> {
  return createScratchDatabase(prefix, ADMIN_URL);
}
