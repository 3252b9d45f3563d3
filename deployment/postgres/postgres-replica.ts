import { appendFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresInstance, run, type PostgresStopMode } from './postgres-instance.js';
import { sleep } from '../host/poll.js';

export interface PostgresReplicaOptions {
  /** The server it streams from. */
  primary: PostgresInstance;
  /** Holds the standby's data directory (`data/`), Unix socket and `postgres.log`. */
  dir: string;
  /** Loopback TCP port the standby listens on. */
  port: number;
  /** Where pg_basebackup and postgres are; those of the primary's version when absent. */
  binDir?: string;
}

async function query<Row>(url: string, sql: string, params: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as Row[];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A hot standby of a PostgresInstance, streaming its WAL, for SPIRE's read-only connection
 * (`ro_connection_string`). It runs like any PostgresInstance (data, socket and log in `dir`) and a
 * later object on the same `dir` adopts it. It holds no replication slot, so the primary keeps no
 * WAL for it: a standby left down while its primary recycled the WAL it still needed, and any
 * standby of a primary restored from a backup (whose history it has run ahead of, and would diverge
 * from), must be recreated.
 */
export class PostgresReplica {
  readonly instance: PostgresInstance;

  constructor(private readonly options: PostgresReplicaOptions) {
    this.instance = new PostgresInstance({ dir: options.dir, port: options.port, binDir: options.binDir });
  }

  get port(): number {
    return this.options.port;
  }

  connectionString(database = 'postgres'): string {
    return this.instance.connectionString(database);
  }

  /**
   * Running, answering and in recovery: adopts a running standby, else starts the existing one
   * (which needs no primary to serve what it has replayed, and reconnects to it by itself), else
   * makes one from a base backup of the primary, which must be up for that.
   */
  async ensureRunning(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (!existsSync(this.instance.dataDir)) await this.baseBackup(deadline);
    await this.instance.ensureRunning(Math.max(deadline - Date.now(), 1));
    const [row] = await query<{ standby: boolean }>(
      this.connectionString(),
      'SELECT pg_is_in_recovery() AS standby',
    );
    if (!row?.standby)
      throw new Error(
        `PostgreSQL in ${this.instance.dataDir} runs but is no standby (was it promoted?): recreate() makes it one again`,
      );
  }

  stop(mode: PostgresStopMode = 'fast'): Promise<void> {
    return this.instance.stop(mode);
  }

  /** Discards the standby and makes a new one from the primary: after the primary was restored from a backup, say. */
  async recreate(timeoutMs = 60_000): Promise<void> {
    await this.instance.stop('immediate');
    rmSync(this.instance.dataDir, { recursive: true, force: true });
    await this.ensureRunning(timeoutMs);
  }

  /** Whether its WAL receiver streams from the primary now (false while it is down or reconnecting). */
  async streaming(): Promise<boolean> {
    const rows = await query<{ status: string }>(
      this.connectionString(),
      'SELECT status FROM pg_stat_wal_receiver',
    ).catch(() => []);
    return rows[0]?.status === 'streaming';
  }

  /** Waits until the standby has replayed all the WAL the primary had written when called. */
  async waitCaughtUp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const primaryPort = this.options.primary.port;
    const [written] = await query<{ lsn: string }>(
      this.options.primary.connectionString(),
      'SELECT pg_current_wal_lsn() AS lsn',
    ).catch((error: Error) => {
      throw new Error(`the primary on port ${primaryPort} does not answer: ${error.message}`);
    });
    const target = written!.lsn;
    for (;;) {
      let state: string;
      try {
        const [row] = await query<{ replayed: string | null; lag: string | null }>(
          this.connectionString(),
          'SELECT pg_last_wal_replay_lsn() AS replayed, pg_wal_lsn_diff($1, pg_last_wal_replay_lsn()) AS lag',
          [target],
        );
        const lag = row?.lag ?? null;
        if (lag !== null && Number(lag) <= 0) return;
        state = `${lag ?? 'unknown'} bytes behind (replayed up to ${row?.replayed ?? 'nothing'})`;
      } catch (error) {
        state = `not answering: ${(error as Error).message}`;
      }
      if (Date.now() > deadline)
        throw new Error(
          `the standby on port ${this.port} did not replay the WAL of the primary (port ${primaryPort}) up to ${target} within ${timeoutMs} ms: ${state}`,
        );
      await sleep(100);
    }
  }

  /** Copies the primary next to its final place and moves it there, so an interrupted copy leaves nothing half made. */
  private async baseBackup(deadline: number): Promise<void> {
    const primary = this.options.primary;
    const binDir = this.options.binDir ?? (await primary.binDir());
    const user = await this.instance.prepareDir();
    const partial = `${this.instance.dataDir}.init`;
    rmSync(partial, { recursive: true, force: true });
    // -R writes standby.signal and a primary_conninfo naming the primary into the copy; a fast
    // checkpoint starts the copy now rather than after a checkpoint spread over minutes.
    const args = ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', partial];
    args.push('-X', 'stream', '-R', '--checkpoint=fast');
    const result = await run(join(binDir, 'pg_basebackup'), args, {
      ...(user ?? {}),
      timeout: Math.max(deadline - Date.now(), 1000),
    });
    if (result.code !== 0) {
      rmSync(partial, { recursive: true, force: true });
      throw new Error(
        `pg_basebackup from the primary on port ${primary.port} failed for the standby in ${this.instance.dataDir}:\n${result.output}`,
      );
    }
    // The standby retries a lost primary every 5 s by default: a drill's heal would wait that long
    // for it, so it retries every second (appended to the settings -R wrote, still the postgres user's file).
    appendFileSync(join(partial, 'postgresql.auto.conf'), "wal_retrieve_retry_interval = '1s'\n");
    renameSync(partial, this.instance.dataDir);
  }
}
