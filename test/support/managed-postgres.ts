import pg from 'pg';
import { findPostgresBinDir } from '../../deployment/postgres/postgres-instance.js';

/** This host's PostgreSQL server binaries, or undefined with the reason printed for the tests that skip. */
export function postgresBinDirOrSkip(what: string): Promise<string | undefined> {
  return findPostgresBinDir().catch((error: Error) => {
    console.warn(`skipping ${what}: ${error.message}`);
    return undefined;
  });
}

/** One query on a connection of its own. */
export async function queryOnce(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The notes of the `marks` table the managed-PostgreSQL tests write, in order. */
export const notesIn = async (url: string): Promise<string[]> =>
  (await queryOnce(url, 'SELECT note FROM marks ORDER BY note')).rows.map((r: { note: string }) => r.note);
