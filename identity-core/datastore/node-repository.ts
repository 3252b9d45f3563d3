import { AlreadyExistsError, NotFoundError } from './errors.js';
import type { AttestedNode, Selector } from './records.js';
import type { SqlClient } from './sql-client.js';

interface NodeRow {
  spiffe_id: string;
  data_type: string;
  serial_number: string;
  expires_at: number;
  new_serial_number: string;
  new_expires_at: number;
  can_reattest: boolean;
}

export interface SerialUpdate {
  certSerialNumber?: string;
  certNotAfter?: number;
  newCertSerialNumber?: string;
  newCertNotAfter?: number;
}

/** Attested nodes (agents): the serial of the SVID each may use, and bans (an empty serial, as SPIRE marks them). */
export class NodeRepository {
  constructor(private readonly sql: SqlClient) {}

  private async withSelectors(rows: NodeRow[]): Promise<AttestedNode[]> {
    if (rows.length === 0) return [];
    const selectors = await this.sql.query<{ spiffe_id: string; type: string; value: string }>(
      'SELECT spiffe_id, type, value FROM node_selectors WHERE spiffe_id = ANY($1) ORDER BY spiffe_id, type, value',
      [rows.map((r) => r.spiffe_id)],
    );
    const byId = new Map<string, Selector[]>();
    for (const s of selectors)
      byId.set(s.spiffe_id, [...(byId.get(s.spiffe_id) ?? []), { type: s.type, value: s.value }]);
    return rows.map((row) => ({
      spiffeId: row.spiffe_id,
      attestationType: row.data_type,
      certSerialNumber: row.serial_number,
      certNotAfter: row.expires_at,
      newCertSerialNumber: row.new_serial_number,
      newCertNotAfter: row.new_expires_at,
      canReattest: row.can_reattest,
      selectors: byId.get(row.spiffe_id) ?? [],
    }));
  }

  async create(node: AttestedNode): Promise<AttestedNode> {
    await this.sql.transaction(async (tx) => {
      if (
        (await tx.query('SELECT 1 FROM attested_node_entries WHERE spiffe_id = $1', [node.spiffeId])).length >
        0
      ) {
        throw new AlreadyExistsError(`agent ${node.spiffeId} is already attested`);
      }
      await tx.query(
        `INSERT INTO attested_node_entries (spiffe_id, data_type, serial_number, expires_at, new_serial_number, new_expires_at, can_reattest)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          node.spiffeId,
          node.attestationType,
          node.certSerialNumber,
          node.certNotAfter,
          node.newCertSerialNumber,
          node.newCertNotAfter,
          node.canReattest,
        ],
      );
      for (const s of node.selectors) {
        await tx.query(
          'INSERT INTO node_selectors (spiffe_id, type, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [node.spiffeId, s.type, s.value],
        );
      }
    });
    return node;
  }

  async get(spiffeId: string): Promise<AttestedNode | undefined> {
    return (
      await this.withSelectors(
        await this.sql.query<NodeRow>('SELECT * FROM attested_node_entries WHERE spiffe_id = $1', [spiffeId]),
      )
    )[0];
  }

  async list(): Promise<AttestedNode[]> {
    return this.withSelectors(
      await this.sql.query<NodeRow>('SELECT * FROM attested_node_entries ORDER BY spiffe_id'),
    );
  }

  async updateSerials(spiffeId: string, update: SerialUpdate): Promise<void> {
    const rows = await this.sql.query(
      `UPDATE attested_node_entries SET
         serial_number = COALESCE($2, serial_number),
         expires_at = COALESCE($3, expires_at),
         new_serial_number = COALESCE($4, new_serial_number),
         new_expires_at = COALESCE($5, new_expires_at)
       WHERE spiffe_id = $1 RETURNING spiffe_id`,
      [
        spiffeId,
        update.certSerialNumber ?? null,
        update.certNotAfter ?? null,
        update.newCertSerialNumber ?? null,
        update.newCertNotAfter ?? null,
      ],
    );
    if (rows.length === 0) throw new NotFoundError(`agent ${spiffeId} not found`);
  }

  async ban(spiffeId: string): Promise<void> {
    const rows = await this.sql.query(
      `UPDATE attested_node_entries SET serial_number = '', new_serial_number = '' WHERE spiffe_id = $1 RETURNING spiffe_id`,
      [spiffeId],
    );
    if (rows.length === 0) throw new NotFoundError(`agent ${spiffeId} not found`);
  }

  async delete(spiffeId: string): Promise<void> {
    const rows = await this.sql.query(
      'DELETE FROM attested_node_entries WHERE spiffe_id = $1 RETURNING spiffe_id',
      [spiffeId],
    );
    if (rows.length === 0) throw new NotFoundError(`agent ${spiffeId} not found`);
  }
}
