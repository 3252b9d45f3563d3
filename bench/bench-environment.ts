import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseChoice } from '../deployment/implementation/spire-configs.js';
import { createScratchDatabase, postgresReachable } from '../deployment/postgres/scratch-database.js';

/** A scratch run directory for one benchmark, removed afterwards. */
export function benchRunDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh database on the PostgreSQL at BENCH_POSTGRES_URL (default: the local server); fails with the reason when unreachable. */
export async function benchDatabase(
  prefix: string,
): Promise<{ choice: DatabaseChoice; drop(): Promise<void> }> {
  const adminUrl = process.env.BENCH_POSTGRES_URL;
  const reachable = await postgresReachable(adminUrl);
  if (!reachable.ok) throw new Error(`this benchmark needs PostgreSQL: ${reachable.reason}`);
  const database = await createScratchDatabase(prefix, adminUrl);
  return { choice: { type: 'postgres', connectionString: database.connectionString }, drop: database.drop };
}
