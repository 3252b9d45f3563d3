import { createHash } from 'node:crypto';
import pg from 'pg';
import { CaJournal, type AuthorityKind, type AuthorityStatus } from '../../identity-core/pki/ca-journal.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import { readSpireBundle, readSpireJournal } from './spire-datastore-records.js';

/**
 * What a SPIRE server group's datastore holds, reduced to ids and the few facts a restore can get
 * wrong, so that `db-restore` can say what an older backup lacks. Plain JSON and small: it is kept in
 * Temporal workflow history and in reports, so no certificates or keys.
 */
export interface DatastoreInventory {
  /** Unix milliseconds at which the snapshot was read. */
  takenAt: number;
  entries: InventoryEntry[];
  agents: InventoryAgent[];
  /** A count only: tokens are secrets. */
  joinTokens: number;
  bundles: InventoryBundle[];
  /** One CA journal per server that ever ran against the datastore. */
  journal: InventoryJournal[];
}

export interface InventoryEntry {
  id: string;
  spiffeId: string;
  parentId: string;
  revision: number;
}

/** An attested agent: the server accepts its SVID only when the serial is `serial` or `newSerial`. */
export interface InventoryAgent {
  spiffeId: string;
  /** Decimal; '' when banned. */
  serial: string;
  /** The serial of an SVID renewed but not yet presented; '' when none. */
  newSerial: string;
  /** Unix seconds: when the SVID with `serial` expires. */
  expiresAt: number;
}

export interface InventoryBundle {
  trustDomain: string;
  /** X.509 authority ids: the SubjectKeyIdentifier in hex (the LocalAuthority API's id), else `sha256:` and 16 hex of the DER. */
  x509: string[];
  /** JWT authority key ids. */
  jwt: string[];
}

export interface InventoryAuthority {
  kind: AuthorityKind;
  /** The X.509 CA's SubjectKeyIdentifier in hex, or the JWT key id: the id in the bundle too. */
  id: string;
  status: AuthorityStatus;
  tainted: boolean;
}

/** A server's CA journal: each kind's current and next slot, as `CaJournal` stores them. */
export interface InventoryJournal {
  /** Row id in ca_journals, which the server keeps in its data directory to find its journal again. */
  id: number;
  /** '' when the journal has no active X.509 authority. */
  activeX509AuthorityId: string;
  authorities: InventoryAuthority[];
}

/** What `live` holds that `backup` lacks or holds differently, i.e. what a restore from `backup` loses. */
export interface InventoryDiff {
  entries: {
    /** Registered after the backup: gone after the restore. */
    missing: InventoryEntry[];
    /** Updated after the backup: the restore brings back the older revision. */
    stale: { id: string; spiffeId: string; liveRevision: number; backupRevision: number }[];
    /** Deleted after the backup: the restore brings them back. */
    extra: InventoryEntry[];
  };
  agents: {
    /** Attested after the backup: unknown to the restored server. */
    missing: InventoryAgent[];
    /** Renewed after the backup: the restored server refuses the SVID the agent holds. */
    staleSerial: { spiffeId: string; serial: string; backupSerial: string; backupNewSerial: string }[];
    /** Banned after the backup: the restore lifts the ban. */
    banLifted: string[];
  };
  /** Trust domains whose backup bundle lacks authorities the live one has; others are left out. */
  bundles: { trustDomain: string; missingX509: string[]; missingJwt: string[] }[];
  journal: {
    /** Authorities created after the backup, by journal row. */
    missingAuthorities: ({ journalId: number } & InventoryAuthority)[];
    /** Journals whose active X.509 authority differs; `backup` is '' when the backup has none or lacks the row. */
    activeChanged: { journalId: number; live: string; backup: string }[];
  };
  empty: boolean;
}

/** The part of BundleRepository's stored document the inventory needs. */
interface StoredBundleIds {
  x509Authorities: { der: string }[];
  jwtAuthorities: { keyId: string }[];
}

function bundleX509Id(derBase64: string): string {
  const der = Buffer.from(derBase64, 'base64');
  // Certificates from a foreign bundle may lack a SKI; a digest still tells them apart.
  return x509AuthorityId(der) || `sha256:${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

/** The database and host a connection string names, for error messages: never the password. */
function databaseLabel(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `database "${decodeURIComponent(url.pathname.slice(1))}" on ${url.host}`;
  } catch {
    return 'the datastore database';
  }
}

/**
 * Whose tables the datastore holds: the bundled SPIRE's, or real SPIRE's (whose attested nodes
 * expire at a timestamp, and whose bundles and CA journals are protobuf).
 */
export type DatastoreSchema = 'tspire' | 'spire';

/** Real SPIRE's bundles and journals as the inventory has them; tainted authorities are marked in its bundle. */
function spireBundlesAndJournals(
  bundleRows: { trust_domain: string; data: Buffer }[],
  journalRows: { id: number; data: Buffer; active_x509_authority_id: string }[],
): Pick<DatastoreInventory, 'bundles' | 'journal'> {
  const bundles = bundleRows.map((r) => ({ trustDomain: r.trust_domain, ...readSpireBundle(r.data) }));
  const tainted = new Set(
    bundles.flatMap((b) => [
      ...b.roots.filter((root) => root.tainted).map((root) => `x509 ${x509AuthorityId(root.der)}`),
      ...b.jwtKeys.filter((key) => key.tainted).map((key) => `jwt ${key.keyId}`),
    ]),
  );
  return {
    bundles: bundles.map((b) => ({
      trustDomain: b.trustDomain,
      x509: b.roots.map((root) => bundleX509Id(root.der.toString('base64'))),
      jwt: b.jwtKeys.map((key) => key.keyId),
    })),
    journal: journalRows.map((r) => ({
      id: r.id,
      activeX509AuthorityId: r.active_x509_authority_id,
      authorities: readSpireJournal(r.data).map((a) => ({
        ...a,
        tainted: tainted.has(`${a.kind} ${a.id}`),
      })),
    })),
  };
}

/**
 * Reads the inventory in one read-only REPEATABLE READ transaction: servers may still be writing,
 * and the parts must come from one snapshot to be compared with another.
 */
export async function readInventory(
  connectionString: string,
  schema: DatastoreSchema = 'tspire',
): Promise<DatastoreInventory> {
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: 5000,
    query_timeout: 15_000,
    application_name: 'spire-drill inventory',
  });
  // A connection lost between queries fails the next query; unheard, the event would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const takenAt = Date.now();
    const entries = await client.query<{
      entry_id: string;
      spiffe_id: string;
      parent_id: string;
      revision_number: string | number;
    }>('SELECT entry_id, spiffe_id, parent_id, revision_number FROM registered_entries ORDER BY entry_id');
    const agents = await client.query<{
      spiffe_id: string;
      serial_number: string;
      new_serial_number: string;
      expires_at: string | number;
    }>(
      `SELECT spiffe_id, serial_number, new_serial_number, ${
        schema === 'spire' ? 'EXTRACT(EPOCH FROM expires_at)::bigint AS expires_at' : 'expires_at'
      } FROM attested_node_entries ORDER BY spiffe_id`,
    );
    const tokens = await client.query<{ count: number }>(
      'SELECT count(*)::integer AS count FROM join_tokens',
    );
    // JSON (a document) in the bundled SPIRE's tables, protobuf bytes in real SPIRE's.
    const bundles = await client.query<{ trust_domain: string; data: unknown }>(
      'SELECT trust_domain, data FROM bundles ORDER BY trust_domain',
    );
    const journals = await client.query<{
      id: number;
      data: unknown;
      active_x509_authority_id: string | null;
    }>('SELECT id, data, active_x509_authority_id FROM ca_journals ORDER BY id');
    await client.query('COMMIT');
    const common = {
      takenAt,
      entries: entries.rows.map((r) => ({
        id: r.entry_id,
        spiffeId: r.spiffe_id,
        parentId: r.parent_id,
        revision: Number(r.revision_number),
      })),
      agents: agents.rows.map((r) => ({
        spiffeId: r.spiffe_id,
        serial: r.serial_number,
        newSerial: r.new_serial_number,
        expiresAt: Number(r.expires_at),
      })),
      joinTokens: tokens.rows[0]?.count ?? 0,
    };
    if (schema === 'spire')
      return {
        ...common,
        ...spireBundlesAndJournals(
          bundles.rows.map((r) => ({ trust_domain: r.trust_domain, data: r.data as Buffer })),
          journals.rows.map((r) => ({
            id: Number(r.id),
            data: r.data as Buffer,
            active_x509_authority_id: r.active_x509_authority_id ?? '',
          })),
        ),
      };
    return {
      ...common,
      bundles: bundles.rows.map((r) => {
        const data = r.data as StoredBundleIds;
        return {
          trustDomain: r.trust_domain,
          x509: data.x509Authorities.map((a) => bundleX509Id(a.der)),
          jwt: data.jwtAuthorities.map((a) => a.keyId),
        };
      }),
      journal: journals.rows.map((r) => {
        const journal = CaJournal.fromJSON(r.data);
        return {
          id: r.id,
          activeX509AuthorityId: r.active_x509_authority_id ?? '',
          authorities: (['x509', 'jwt'] as const).flatMap((kind) =>
            journal
              .entries(kind)
              .map((e) => ({ kind, id: e.authorityId, status: e.status, tainted: e.tainted })),
          ),
        };
      }),
    };
  } catch (error) {
    throw new Error(
      `cannot read the datastore inventory of ${databaseLabel(connectionString)}: ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function diffInventory(live: DatastoreInventory, backup: DatastoreInventory): InventoryDiff {
  const backupEntries = new Map(backup.entries.map((e) => [e.id, e]));
  const liveEntryIds = new Set(live.entries.map((e) => e.id));
  const entries: InventoryDiff['entries'] = {
    missing: live.entries.filter((e) => !backupEntries.has(e.id)),
    stale: live.entries.flatMap((e) => {
      const old = backupEntries.get(e.id);
      return old && old.revision !== e.revision
        ? [{ id: e.id, spiffeId: e.spiffeId, liveRevision: e.revision, backupRevision: old.revision }]
        : [];
    }),
    extra: backup.entries.filter((e) => !liveEntryIds.has(e.id)),
  };

  const backupAgents = new Map(backup.agents.map((a) => [a.spiffeId, a]));
  const agents: InventoryDiff['agents'] = { missing: [], staleSerial: [], banLifted: [] };
  for (const agent of live.agents) {
    const old = backupAgents.get(agent.spiffeId);
    if (!old) agents.missing.push(agent);
    else if (agent.serial === '') {
      if (old.serial !== '') agents.banLifted.push(agent.spiffeId);
    } else if (agent.serial !== old.serial && agent.serial !== old.newSerial) {
      agents.staleSerial.push({
        spiffeId: agent.spiffeId,
        serial: agent.serial,
        backupSerial: old.serial,
        backupNewSerial: old.newSerial,
      });
    }
  }

  const backupBundles = new Map(backup.bundles.map((b) => [b.trustDomain, b]));
  const bundles = live.bundles.flatMap((bundle) => {
    const old = backupBundles.get(bundle.trustDomain);
    const missingX509 = bundle.x509.filter((id) => !old?.x509.includes(id));
    const missingJwt = bundle.jwt.filter((id) => !old?.jwt.includes(id));
    return missingX509.length || missingJwt.length
      ? [{ trustDomain: bundle.trustDomain, missingX509, missingJwt }]
      : [];
  });

  const backupJournals = new Map(backup.journal.map((j) => [j.id, j]));
  const journal: InventoryDiff['journal'] = { missingAuthorities: [], activeChanged: [] };
  for (const liveJournal of live.journal) {
    const old = backupJournals.get(liveJournal.id);
    const known = new Set(old?.authorities.map((a) => `${a.kind} ${a.id}`));
    for (const authority of liveJournal.authorities)
      if (!known.has(`${authority.kind} ${authority.id}`))
        journal.missingAuthorities.push({ journalId: liveJournal.id, ...authority });
    const backupActive = old?.activeX509AuthorityId ?? '';
    if (liveJournal.activeX509AuthorityId !== backupActive)
      journal.activeChanged.push({
        journalId: liveJournal.id,
        live: liveJournal.activeX509AuthorityId,
        backup: backupActive,
      });
  }

  const empty = [
    entries.missing,
    entries.stale,
    entries.extra,
    agents.missing,
    agents.staleSerial,
    agents.banLifted,
    bundles,
    journal.missingAuthorities,
    journal.activeChanged,
  ].every((list) => list.length === 0);
  return { entries, agents, bundles, journal, empty };
}

/** Reports name a handful of items per line: a restore may lose hundreds. */
const NAMES_PER_LINE = 5;

function names(items: string[]): string {
  const shown = items.slice(0, NAMES_PER_LINE).join(', ');
  return items.length > NAMES_PER_LINE ? `${shown} and ${items.length - NAMES_PER_LINE} more` : shown;
}

const count = (n: number, singular: string, plural: string) => `${n} ${n === 1 ? singular : plural}`;

/** One line per kind of loss, for a drill report; none when the backup lost nothing. */
export function describeInventoryDiff(diff: InventoryDiff): string[] {
  const lines: string[] = [];
  const { entries, agents, bundles, journal } = diff;
  if (entries.missing.length)
    lines.push(
      `${count(entries.missing.length, 'registration entry', 'registration entries')} registered after the backup: ${names(entries.missing.map((e) => e.spiffeId))}`,
    );
  if (entries.stale.length)
    lines.push(
      `${count(entries.stale.length, 'registration entry', 'registration entries')} updated after the backup, restored at an older revision: ${names(entries.stale.map((e) => `${e.spiffeId} (revision ${e.liveRevision}, backup ${e.backupRevision})`))}`,
    );
  if (entries.extra.length)
    lines.push(
      `${count(entries.extra.length, 'registration entry', 'registration entries')} deleted after the backup, back once restored: ${names(entries.extra.map((e) => e.spiffeId))}`,
    );
  if (agents.missing.length)
    lines.push(
      `${count(agents.missing.length, 'agent', 'agents')} attested after the backup, unknown to the restored server: ${names(agents.missing.map((a) => a.spiffeId))}`,
    );
  for (const agent of agents.staleSerial)
    lines.push(
      `agent ${agent.spiffeId} renewed its SVID after the backup (serial ${agent.serial}): the restored server will refuse it`,
    );
  if (agents.banLifted.length)
    lines.push(
      `${count(agents.banLifted.length, 'agent', 'agents')} banned after the backup, no longer banned once restored: ${names(agents.banLifted)}`,
    );
  for (const bundle of bundles) {
    if (bundle.missingX509.length)
      lines.push(
        `trust bundle of ${bundle.trustDomain} lacks ${count(bundle.missingX509.length, 'X.509 authority', 'X.509 authorities')} added after the backup: ${names(bundle.missingX509)}`,
      );
    if (bundle.missingJwt.length)
      lines.push(
        `trust bundle of ${bundle.trustDomain} lacks ${count(bundle.missingJwt.length, 'JWT authority', 'JWT authorities')} added after the backup: ${names(bundle.missingJwt)}`,
      );
  }
  for (const journalId of new Set(journal.missingAuthorities.map((a) => a.journalId))) {
    const authorities = journal.missingAuthorities.filter((a) => a.journalId === journalId);
    lines.push(
      `CA journal ${journalId} lacks ${count(authorities.length, 'authority', 'authorities')} created after the backup: ${names(authorities.map((a) => `${a.kind} ${a.id} (${a.status}${a.tainted ? ', tainted' : ''})`))}`,
    );
  }
  for (const change of journal.activeChanged)
    lines.push(
      `CA journal ${change.journalId} has active X.509 authority ${change.live || 'none'}; the backup has ${change.backup || 'none'}`,
    );
  return lines;
}
