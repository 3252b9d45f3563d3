import { randomUUID } from 'node:crypto';
import { AlreadyExistsError, NotFoundError } from './errors.js';
import type { RegistrationEntry, Selector } from './records.js';
import type { SqlClient } from './sql-client.js';

export type NewRegistrationEntry = Omit<RegistrationEntry, 'id' | 'createdAt' | 'revisionNumber'> & {
  id?: string;
};

interface EntryRow {
  entry_id: string;
  spiffe_id: string;
  parent_id: string;
  x509_svid_ttl: number;
  jwt_svid_ttl: number;
  downstream: boolean;
  admin: boolean;
  hint: string;
  expiry: number;
  created_at: number;
  revision_number: number;
}

const selectorKey = (selectors: Selector[]) =>
  selectors
    .map((s) => `${s.type}:${s.value}`)
    .sort()
    .join('\n');

/** Registration entries with their selectors and DNS names; every multi-row change is one transaction. */
export class EntryRepository {
  constructor(private readonly sql: SqlClient) {}

  private async assemble(
    db: SqlClient,
    rows: EntryRow[],
    scope: { where: string; params: unknown[] },
  ): Promise<RegistrationEntry[]> {
    if (rows.length === 0) return [];
    const [selectors, dnsNames] = await Promise.all([
      db.query<{ entry_id: string; type: string; value: string }>(
        `SELECT s.entry_id, s.type, s.value FROM selectors s JOIN registered_entries e ON e.entry_id = s.entry_id ${scope.where} ORDER BY s.entry_id, s.type, s.value`,
        scope.params,
      ),
      db.query<{ entry_id: string; value: string }>(
        `SELECT d.entry_id, d.value FROM dns_names d JOIN registered_entries e ON e.entry_id = d.entry_id ${scope.where} ORDER BY d.entry_id, d.position`,
        scope.params,
      ),
    ]);
    const selectorsById = new Map<string, Selector[]>();
    for (const s of selectors) {
      const list = selectorsById.get(s.entry_id) ?? [];
      list.push({ type: s.type, value: s.value });
      selectorsById.set(s.entry_id, list);
    }
    const dnsById = new Map<string, string[]>();
    for (const d of dnsNames) {
      const list = dnsById.get(d.entry_id) ?? [];
      list.push(d.value);
      dnsById.set(d.entry_id, list);
    }
    return rows.map((row) => ({
      id: row.entry_id,
      spiffeId: row.spiffe_id,
      parentId: row.parent_id,
      selectors: selectorsById.get(row.entry_id) ?? [],
      x509SvidTtl: row.x509_svid_ttl,
      jwtSvidTtl: row.jwt_svid_ttl,
      downstream: row.downstream,
      admin: row.admin,
      dnsNames: dnsById.get(row.entry_id) ?? [],
      hint: row.hint,
      expiresAt: row.expiry,
      createdAt: row.created_at,
      revisionNumber: row.revision_number,
    }));
  }

  private async select(db: SqlClient, where: string, params: unknown[]): Promise<RegistrationEntry[]> {
    const rows = await db.query<EntryRow>(
      `SELECT e.* FROM registered_entries e ${where} ORDER BY e.created_at, e.entry_id`,
      params,
    );
    return this.assemble(db, rows, { where, params });
  }

  /** Creates an entry; an entry with the same SPIFFE ID, parent and selector set already there is AlreadyExists, as in SPIRE. */
  async create(entry: NewRegistrationEntry): Promise<RegistrationEntry> {
    return this.sql.transaction(async (tx) => {
      // Two servers creating the same entry at once must not both pass the duplicate check.
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${entry.parentId} ${entry.spiffeId}`]);
      const candidates = await this.select(tx, 'WHERE e.spiffe_id = $1 AND e.parent_id = $2', [
        entry.spiffeId,
        entry.parentId,
      ]);
      const duplicate = candidates.find((c) => selectorKey(c.selectors) === selectorKey(entry.selectors));
      if (duplicate) throw new AlreadyExistsError('similar entry already exists', duplicate);
      const id = entry.id ?? randomUUID();
      if (
        entry.id &&
        (await tx.query('SELECT 1 FROM registered_entries WHERE entry_id = $1', [id])).length > 0
      ) {
        throw new AlreadyExistsError(`an entry with ID ${id} already exists`);
      }
      const createdAt = Math.floor(Date.now() / 1000);
      await tx.query(
        `INSERT INTO registered_entries (entry_id, spiffe_id, parent_id, x509_svid_ttl, jwt_svid_ttl, downstream, admin, hint, expiry, created_at, revision_number)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)`,
        [
          id,
          entry.spiffeId,
          entry.parentId,
          entry.x509SvidTtl,
          entry.jwtSvidTtl,
          entry.downstream,
          entry.admin,
          entry.hint,
          entry.expiresAt,
          createdAt,
        ],
      );
      await this.insertChildren(tx, id, entry);
      return (await this.select(tx, 'WHERE e.entry_id = $1', [id]))[0]!;
    });
  }

  /**
   * Replaces every field of entry `id` but its creation time, and bumps its revision number so
   * agents holding the old copy fetch the new one. Taking the SPIFFE ID, parent and selector set of
   * another entry is AlreadyExists, as creating it would be.
   */
  async update(id: string, entry: Omit<NewRegistrationEntry, 'id'>): Promise<RegistrationEntry> {
    return this.sql.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${entry.parentId} ${entry.spiffeId}`]);
      const existing = (await this.select(tx, 'WHERE e.entry_id = $1', [id]))[0];
      if (!existing) throw new NotFoundError(`entry ${id} not found`);
      const candidates = await this.select(
        tx,
        'WHERE e.spiffe_id = $1 AND e.parent_id = $2 AND e.entry_id <> $3',
        [entry.spiffeId, entry.parentId, id],
      );
      const duplicate = candidates.find((c) => selectorKey(c.selectors) === selectorKey(entry.selectors));
      if (duplicate) throw new AlreadyExistsError('similar entry already exists', duplicate);
      await tx.query(
        `UPDATE registered_entries SET spiffe_id = $2, parent_id = $3, x509_svid_ttl = $4, jwt_svid_ttl = $5,
           downstream = $6, admin = $7, hint = $8, expiry = $9, revision_number = revision_number + 1
         WHERE entry_id = $1`,
        [
          id,
          entry.spiffeId,
          entry.parentId,
          entry.x509SvidTtl,
          entry.jwtSvidTtl,
          entry.downstream,
          entry.admin,
          entry.hint,
          entry.expiresAt,
        ],
      );
      await tx.query('DELETE FROM selectors WHERE entry_id = $1', [id]);
      await tx.query('DELETE FROM dns_names WHERE entry_id = $1', [id]);
      await this.insertChildren(tx, id, entry);
      return (await this.select(tx, 'WHERE e.entry_id = $1', [id]))[0]!;
    });
  }

  private async insertChildren(
    tx: SqlClient,
    id: string,
    entry: Pick<RegistrationEntry, 'selectors' | 'dnsNames'>,
  ): Promise<void> {
    for (const s of entry.selectors) {
      await tx.query(
        'INSERT INTO selectors (entry_id, type, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [id, s.type, s.value],
      );
    }
    for (const [position, name] of entry.dnsNames.entries()) {
      await tx.query('INSERT INTO dns_names (entry_id, position, value) VALUES ($1, $2, $3)', [
        id,
        position,
        name,
      ]);
    }
  }

  async get(id: string): Promise<RegistrationEntry | undefined> {
    return (await this.select(this.sql, 'WHERE e.entry_id = $1', [id]))[0];
  }

  async list(filter: { parentId?: string; spiffeId?: string } = {}): Promise<RegistrationEntry[]> {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (filter.parentId !== undefined) {
      params.push(filter.parentId);
      clauses.push(`e.parent_id = $${params.length}`);
    }
    if (filter.spiffeId !== undefined) {
      params.push(filter.spiffeId);
      clauses.push(`e.spiffe_id = $${params.length}`);
    }
    return this.select(this.sql, clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params);
  }

  /** Every entry in three queries, for the server's periodic entry-cache reload. */
  async listAll(): Promise<RegistrationEntry[]> {
    return this.select(this.sql, '', []);
  }

  async delete(id: string): Promise<RegistrationEntry> {
    return this.sql.transaction(async (tx) => {
      const existing = (await this.select(tx, 'WHERE e.entry_id = $1', [id]))[0];
      if (!existing) throw new NotFoundError(`entry ${id} not found`);
      await tx.query('DELETE FROM registered_entries WHERE entry_id = $1', [id]);
      return existing;
    });
  }
}
