import type { SqlClient } from './sql-client.js';

export interface CaJournalRecord {
  id: number;
  data: unknown;
  activeX509AuthorityId: string;
}

/** CA journals, one per server, stored as JSON documents. */
export class CaJournalRepository {
  constructor(private readonly sql: SqlClient) {}

  async load(id: number): Promise<CaJournalRecord | undefined> {
    const row = (
      await this.sql.query<{ id: number; data: unknown; active_x509_authority_id: string }>(
        'SELECT * FROM ca_journals WHERE id = $1',
        [id],
      )
    )[0];
    return row
      ? {
          id: row.id,
          data: typeof row.data === 'string' ? JSON.parse(row.data) : row.data,
          activeX509AuthorityId: row.active_x509_authority_id,
        }
      : undefined;
  }

  async save(record: { id?: number; data: unknown; activeX509AuthorityId: string }): Promise<number> {
    if (record.id !== undefined) {
      const rows = await this.sql.query<{ id: number }>(
        'UPDATE ca_journals SET data = $2, active_x509_authority_id = $3 WHERE id = $1 RETURNING id',
        [record.id, JSON.stringify(record.data), record.activeX509AuthorityId],
      );
      if (rows.length > 0) return rows[0]!.id;
    }
    const rows = await this.sql.query<{ id: number }>(
      'INSERT INTO ca_journals (data, active_x509_authority_id) VALUES ($1, $2) RETURNING id',
      [JSON.stringify(record.data), record.activeX509AuthorityId],
    );
    return rows[0]!.id;
  }
}
