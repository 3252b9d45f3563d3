/**
 * Where drill runs, their probe samples and verdicts are kept: PostgreSQL when
 * SPIRE_DRILL_RESULTS_URL names one, else an embedded PGlite directory next to the run directories.
 * PGlite serves one process at a time, so every use opens, works and closes under a lock file: the
 * worker writes while the CLI may read.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deploymentsHome } from '../deployment/deployment.js';
import { withFileLock } from '../deployment/host/file-lock.js';
import { openPglite } from '../identity-core/datastore/pglite-client.js';
import { openPostgres } from '../identity-core/datastore/postgres-client.js';
import type { SqlClient } from '../identity-core/datastore/sql-client.js';
import type { DrillRecord } from '../scenarios/drill-record.js';
import type { FidelityRecord, FidelitySummary } from '../scenarios/fidelity-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS drill_runs (
     run_id TEXT PRIMARY KEY,
     suite TEXT,
     scenario TEXT NOT NULL,
     outage TEXT NOT NULL,
     verdict TEXT NOT NULL,
     started_at BIGINT NOT NULL,
     record JSONB NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS drill_samples (
     run_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     sample JSONB NOT NULL,
     PRIMARY KEY (run_id, seq))`,
  // A fidelity run links two suite runs (their drills stay in drill_runs); the counts serve listing.
  `CREATE TABLE IF NOT EXISTS fidelity_runs (
     fidelity_id TEXT PRIMARY KEY,
     suite TEXT NOT NULL,
     started_at BIGINT NOT NULL,
     drills INTEGER NOT NULL,
     differences INTEGER NOT NULL,
     errored INTEGER NOT NULL,
     record JSONB NOT NULL)`,
];

export function resultsLocation(): { url: string } | { directory: string } {
  const url = process.env.SPIRE_DRILL_RESULTS_URL;
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url))
      throw new Error(`SPIRE_DRILL_RESULTS_URL must be a postgres:// URL, not "${url}"`);
    return { url };
  }
  return { directory: join(deploymentsHome(), '.results') };
}

/** Opens the store, runs `fn`, closes it. */
export async function withResults<T>(fn: (store: ResultsStore) => Promise<T>): Promise<T> {
  const where = resultsLocation();
  const run = async (sql: SqlClient) => {
    try {
      for (const statement of SCHEMA) await sql.query(statement);
      return await fn(new ResultsStore(sql));
    } finally {
      await sql.close();
    }
  };
  if ('url' in where) return run(openPostgres(where.url));
  mkdirSync(join(where.directory, '..'), { recursive: true });
  return withFileLock(
    `${where.directory}.lock`,
    async () => run(await openPglite(where.directory)),
    120_000,
    () => `the results store ${where.directory} stays locked`,
  );
}

/** The store opened once, made with its tables if it does not exist yet, and closed. */
export async function ensureResultsStore(): Promise<void> {
  await withResults(async () => undefined);
}

/** The URL with its password hidden, for messages. */
function shown(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/**
 * Fails, saying why, when SPIRE_DRILL_RESULTS_URL is malformed or its PostgreSQL cannot be used
 * (its tables are made if missing): checked before a drill or suite starts anything, so that none
 * runs for a quarter of an hour to find nowhere to record its verdict. The embedded store is made
 * ready by the suite workflow while it spins up.
 */
export async function checkResultsStore(): Promise<void> {
  const where = resultsLocation();
  if (!('url' in where)) return;
  try {
    await ensureResultsStore();
  } catch (error) {
    throw new Error(`the results store at ${shown(where.url)} cannot be used: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export interface DrillSummary {
  runId: string;
  suite: string | null;
  scenario: string;
  outage: string;
  verdict: string;
  startedAt: number;
  /** Absent when the stored record lacks it. */
  finishedAt?: number;
  deploymentId?: string;
}

/** Which runs `list` returns: each filter given must hold. */
export interface DrillFilter {
  scenario?: string;
  verdict?: string;
  /** Epoch ms: runs started at or after it. */
  since?: number;
  limit?: number;
}

/** One fidelity run in `fidelity list`. */
export interface FidelityListing extends FidelitySummary {
  fidelityId: string;
  suite: string;
  startedAt: number;
  finishedAt: number;
  implementations: string[];
}

const decode = <T>(value: T | string): T => (typeof value === 'string' ? (JSON.parse(value) as T) : value);

export class ResultsStore {
  constructor(private readonly sql: SqlClient) {}

  /** Stores (or replaces, on a retried activity) a run and its samples in one transaction. */
  async saveDrill(record: DrillRecord, samples: ProbeSample[], suite?: string): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.query('DELETE FROM drill_samples WHERE run_id = $1', [record.runId]);
      await tx.query(
        `INSERT INTO drill_runs (run_id, suite, scenario, outage, verdict, started_at, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (run_id) DO UPDATE SET suite = EXCLUDED.suite, verdict = EXCLUDED.verdict, record = EXCLUDED.record`,
        [
          record.runId,
          suite ?? null,
          record.scenario,
          record.outage,
          record.verdict,
          record.startedAt,
          JSON.stringify(record),
        ],
      );
      const batch = 500;
      for (let i = 0; i < samples.length; i += batch) {
        const chunk = samples.slice(i, i + batch);
        const values = chunk.map((_, j) => `($1, $${2 * j + 2}, $${2 * j + 3})`).join(', ');
        await tx.query(`INSERT INTO drill_samples (run_id, seq, sample) VALUES ${values}`, [
          record.runId,
          ...chunk.flatMap((sample, j) => [i + j, JSON.stringify(sample)]),
        ]);
      }
    });
  }

  async drill(runId: string): Promise<{ record: DrillRecord; samples: ProbeSample[] } | undefined> {
    const rows = await this.sql.query<{ record: DrillRecord | string }>(
      'SELECT record FROM drill_runs WHERE run_id = $1',
      [runId],
    );
    if (rows.length === 0) return undefined;
    const samples = await this.sql.query<{ sample: ProbeSample | string }>(
      'SELECT sample FROM drill_samples WHERE run_id = $1 ORDER BY seq',
      [runId],
    );
    return { record: decode(rows[0]!.record), samples: samples.map((r) => decode(r.sample)) };
  }

  /** Run ids of every stored run of `scenario` (at `outage`, when given), oldest first. */
  async runsOf(scenario: string, outage?: string): Promise<string[]> {
    const rows = await this.sql.query<{ run_id: string }>(
      outage
        ? 'SELECT run_id FROM drill_runs WHERE scenario = $1 AND outage = $2 ORDER BY started_at'
        : 'SELECT run_id FROM drill_runs WHERE scenario = $1 ORDER BY started_at',
      outage ? [scenario, outage] : [scenario],
    );
    return rows.map((r) => r.run_id);
  }

  /** Run ids of a suite run, in start order. */
  async suiteRuns(suite: string): Promise<string[]> {
    const rows = await this.sql.query<{ run_id: string }>(
      'SELECT run_id FROM drill_runs WHERE suite = $1 ORDER BY started_at',
      [suite],
    );
    return rows.map((r) => r.run_id);
  }

  async list(filter: DrillFilter = {}): Promise<DrillSummary[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      params.push(value);
      where.push(clause.replace('?', `$${params.length}`));
    };
    if (filter.scenario !== undefined) add('scenario = ?', filter.scenario);
    if (filter.verdict !== undefined) add('verdict = ?', filter.verdict);
    if (filter.since !== undefined) add('started_at >= ?', filter.since);
    params.push(filter.limit ?? 50);
    const rows = await this.sql.query<{
      run_id: string;
      suite: string | null;
      scenario: string;
      outage: string;
      verdict: string;
      started_at: string | number;
      finished_at: string | null;
      deployment_id: string | null;
    }>(
      `SELECT run_id, suite, scenario, outage, verdict, started_at,
              record->>'finishedAt' AS finished_at, record->>'deploymentId' AS deployment_id
         FROM drill_runs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY started_at DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({
      runId: r.run_id,
      suite: r.suite,
      scenario: r.scenario,
      outage: r.outage,
      verdict: r.verdict,
      startedAt: Number(r.started_at),
      ...(r.finished_at !== null ? { finishedAt: Number(r.finished_at) } : {}),
      ...(r.deployment_id !== null ? { deploymentId: r.deployment_id } : {}),
    }));
  }
  /** Stores (or replaces) a fidelity run: the two suite runs it links, and its counts. */
  async saveFidelity(record: FidelityRecord, summary: FidelitySummary): Promise<void> {
    await this.sql.query(
      `INSERT INTO fidelity_runs (fidelity_id, suite, started_at, drills, differences, errored, record)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (fidelity_id) DO UPDATE SET drills = EXCLUDED.drills, differences = EXCLUDED.differences,
         errored = EXCLUDED.errored, record = EXCLUDED.record`,
      [
        record.fidelityId,
        record.suite,
        record.startedAt,
        summary.drills,
        summary.differences,
        summary.errored,
        JSON.stringify(record),
      ],
    );
  }

  async fidelity(fidelityId: string): Promise<FidelityRecord | undefined> {
    const rows = await this.sql.query<{ record: FidelityRecord | string }>(
      'SELECT record FROM fidelity_runs WHERE fidelity_id = $1',
      [fidelityId],
    );
    return rows[0] ? decode(rows[0].record) : undefined;
  }

  /** Fidelity runs, newest first. */
  async fidelityList(limit = 50): Promise<FidelityListing[]> {
    const rows = await this.sql.query<{
      drills: number;
      differences: number;
      errored: number;
      record: FidelityRecord | string;
    }>('SELECT drills, differences, errored, record FROM fidelity_runs ORDER BY started_at DESC LIMIT $1', [
      limit,
    ]);
    return rows.map((row) => {
      const record = decode(row.record);
      return {
        fidelityId: record.fidelityId,
        suite: record.suite,
        startedAt: record.startedAt,
        finishedAt: record.finishedAt,
        implementations: record.sides.map((side) => side.implementation),
        drills: Number(row.drills),
        differences: Number(row.differences),
        errored: Number(row.errored),
      };
    });
  }
}
