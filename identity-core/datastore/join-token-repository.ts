import { AlreadyExistsError } from './errors.js';
import type { JoinToken } from './records.js';
import type { SqlClient } from './sql-client.js';

/** Join tokens: single use, consumed by the first attestation that presents them, expired or not. */
export class JoinTokenRepository {
  constructor(private readonly sql: SqlClient) {}

  async create(token: string, expiresAt: number): Promise<JoinToken> {
    const rows = await this.sql.query(
      'INSERT INTO join_tokens (token, expiry) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING token',
      [token, expiresAt],
    );
    if (rows.length === 0) throw new AlreadyExistsError('join token already exists');
    return { token, expiresAt };
  }

  /** Fetches and deletes in one statement, so two attestations racing with one token cannot both win. */
  async take(token: string): Promise<JoinToken | undefined> {
    const rows = await this.sql.query<{ token: string; expiry: number }>(
      'DELETE FROM join_tokens WHERE token = $1 RETURNING token, expiry',
      [token],
    );
    const row = rows[0];
    return row ? { token: row.token, expiresAt: row.expiry } : undefined;
  }

  async pruneExpired(before: number): Promise<number> {
    return (await this.sql.query('DELETE FROM join_tokens WHERE expiry < $1 RETURNING token', [before]))
      .length;
  }
}
