import { execFile, spawn } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import { processAlive } from '../host/managed-process.js';
import { sleep } from '../host/poll.js';

export type PostgresStopMode = 'fast' | 'immediate';

export interface PostgresInstanceOptions {
  /** Holds the data directory (`data/`), the Unix socket and `postgres.log`. */
  dir: string;
  /** Loopback TCP port it listens on. */
  port: number;
  /** Where initdb and postgres are; found on this host when absent. */
  binDir?: string;
}

/** The host has no PostgreSQL server binaries to run a managed datastore with. */
export class MissingPostgresBinaries extends Error {
  constructor(searched: string[]) {
    super(
      `datastore: managed needs PostgreSQL server binaries (initdb, postgres): none found in ${searched.join(', ')}; ` +
        'install the PostgreSQL server package (Debian: apt-get install postgresql) or use another datastore',
    );
    this.name = 'MissingPostgresBinaries';
  }
}

/** Runs a command to completion (as `uid`/`gid` when given); never rejects: a failure is a non-zero code. */
export const run = (
  command: string,
  args: string[],
  options: { uid?: number; gid?: number; timeout?: number; env?: NodeJS.ProcessEnv } = {},
) =>
  new Promise<{ code: number; output: string }>((resolve) => {
    execFile(command, args, { timeout: options.timeout ?? 120_000, ...options }, (error, stdout, stderr) =>
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        output: `${String(stdout)}${String(stderr)}`.trim(),
      }),
    );
  });

const hasServer = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'));

/** Newest version first: "16" before "15", "9.6" last. */
const byVersionDescending = (parent: string, prefix: string) =>
  (existsSync(parent) ? readdirSync(parent) : [])
    .filter((name) => name.startsWith(prefix) && /^[\d.]+$/.test(name.slice(prefix.length)))
    .sort((a, b) => parseFloat(b.slice(prefix.length)) - parseFloat(a.slice(prefix.length)))
    .map((name) => join(parent, name, 'bin'));

/** Where to look for PostgreSQL's server binaries; tests point it elsewhere. */
export interface PostgresSearch {
  /** Debian's /usr/lib/postgresql, holding <version>/bin. */
  debian: string;
  /** The parent of the PGDG packages' pgsql-<version>/bin, /usr. */
  pgdg: string;
  /** Searched for initdb, and for pg_config (asked for its --bindir). */
  path: string;
}

const hostSearch = (): PostgresSearch => ({
  debian: '/usr/lib/postgresql',
  pgdg: '/usr',
  path: process.env.PATH ?? '',
});

/**
 * Directories holding initdb and postgres on this host, newest first: Debian's
 * /usr/lib/postgresql/<version>/bin, the PGDG /usr/pgsql-<version>/bin, `pg_config --bindir`, then
 * PATH. With `major`, only binaries of that major version (a data directory's PG_VERSION) qualify.
 */
export async function findPostgresBinDir(major?: string, search = hostSearch()): Promise<string> {
  const candidates = [
    ...byVersionDescending(search.debian, ''),
    ...byVersionDescending(search.pgdg, 'pgsql-'),
  ];
  const pgConfig = await run('pg_config', ['--bindir'], {
    timeout: 10_000,
    env: { ...process.env, PATH: search.path },
  });
  if (pgConfig.code === 0) candidates.push(pgConfig.output);
  for (const dir of search.path.split(delimiter).filter(Boolean)) {
    // Debian links initdb into /usr/local/bin or /usr/bin; its postgres lives beside the real file.
    const initdb = join(dir, 'initdb');
    candidates.push(existsSync(initdb) ? dirname(realpathSync(initdb)) : dir);
  }
  const searched = [
    join(search.debian, '*', 'bin'),
    join(search.pgdg, 'pgsql-*', 'bin'),
    'pg_config --bindir',
    `PATH (${search.path})`,
  ];
  for (const dir of [...new Set(candidates)].filter(hasServer)) {
    if (major === undefined) return dir;
    const version = await run(join(dir, 'postgres'), ['--version'], { timeout: 10_000 });
    // "postgres (PostgreSQL) 15.20 (Debian …)": 10 and later have one-number majors, 9.x two.
    const found = /\(PostgreSQL\) (\d+)(?:\.(\d+))?/.exec(version.output);
    if (found && (found[1] === major || `${found[1]}.${found[2]}` === major)) return dir;
  }
  if (major !== undefined)
    throw new Error(
      `the managed datastore was created by PostgreSQL ${major}, and no PostgreSQL ${major} server binaries are left on this host (searched ${searched.join(', ')})`,
    );
  throw new MissingPostgresBinaries(searched);
}

/** The OS user PostgreSQL and its tools run as: PostgreSQL refuses root, so as root the `postgres` user; else ourselves. */
export type ServerUser = { uid: number; gid: number } | undefined;

/** PostgreSQL refuses to run as root: then it runs as the `postgres` OS user. */
export async function serverUser(): Promise<ServerUser> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  if (uid.code !== 0 || gid.code !== 0)
    throw new Error(
      'PostgreSQL refuses to run as root and there is no "postgres" OS user to run it as: create one (useradd --system postgres)',
    );
  return { uid: Number(uid.output), gid: Number(gid.output) };
}

const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A PostgreSQL server of a deployment's own, run from this host's binaries: its data directory, Unix
 * socket and log in `dir`, listening on 127.0.0.1:`port` with trust authentication for `postgres`.
 * It is a detached process that outlives the worker; any later PostgresInstance on the same `dir`
 * finds it again through the data directory's postmaster.pid.
 */
export class PostgresInstance {
  readonly dataDir: string;
  readonly logFile: string;

  constructor(private readonly options: PostgresInstanceOptions) {
    this.dataDir = join(options.dir, 'data');
    this.logFile = join(options.dir, 'postgres.log');
  }

  get port(): number {
    return this.options.port;
  }

  /** The Unix socket PostgreSQL creates in `dir` (it is also a sign that it runs). */
  get socketPath(): string {
    return join(this.options.dir, `.s.PGSQL.${this.options.port}`);
  }

  connectionString(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.options.port}/${database}`;
  }

  /** The postmaster's pid while it runs this data directory (its postmaster.pid, checked against /proc). */
  pid(): number | undefined {
    const lockFile = join(this.dataDir, 'postmaster.pid');
    if (!existsSync(lockFile)) return undefined;
    const pid = Number(readFileSync(lockFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return undefined;
    try {
      // A recycled pid belongs to some other process, whose working directory is not our data directory.
      return readlinkSync(`/proc/${pid}/cwd`) === realpathSync(this.dataDir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether it accepts a connection and answers a query now (false while starting or recovering). */
  async isUp(): Promise<boolean> {
    const client = new pg.Client({
      connectionString: this.connectionString(),
      connectionTimeoutMillis: 2000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Running and answering: adopts a running server, else creates the cluster on first use and starts it. */
  async ensureRunning(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.pid() === undefined) {
      const binDir = await this.binDir();
      const user = await this.prepareDir();
      if (!this.major()) await this.initdb(binDir, user);
      await this.start(binDir, user, deadline);
    }
    while (!(await this.isUp())) {
      if (this.pid() === undefined)
        throw new Error(`PostgreSQL in ${this.dataDir} exited during start:\n${this.logTail()}`);
      if (Date.now() > deadline)
        throw new Error(
          `PostgreSQL on port ${this.port} did not accept connections within ${timeoutMs} ms:\n${this.logTail()}`,
        );
      await sleep(200);
    }
  }

  /**
   * Stops it, idempotently: `fast` disconnects clients and checkpoints, `immediate` aborts like a
   * crash (the next start runs crash recovery). Resolves when the postmaster is gone.
   */
  async stop(mode: PostgresStopMode = 'fast', timeoutMs = 30_000): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    try {
      process.kill(pid, mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    } catch {
      return;
    }
    const deadline = Date.now() + timeoutMs;
    while (processAlive(pid) && Date.now() < deadline) await sleep(100);
    if (processAlive(pid)) {
      process.kill(pid, 'SIGKILL');
      while (processAlive(pid)) await sleep(50);
    }
  }

  /** Creates `name` unless it exists; returns its connection string. */
  async createDatabase(name: string): Promise<string> {
    if (!DATABASE_NAME.test(name))
      throw new Error(
        `invalid database name ${JSON.stringify(name)}: lowercase letters, digits, underscores`,
      );
    const client = new pg.Client({
      connectionString: this.connectionString(),
      connectionTimeoutMillis: 5000,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (exists.rowCount === 0)
        await client.query(`CREATE DATABASE ${name}`).catch((error: { code?: string }) => {
          // Another caller created it between our check and our CREATE.
          if (error.code !== '42P04') throw error;
        });
    } finally {
      await client.end();
    }
    return this.connectionString(name);
  }

  /**
   * This host's binaries for the cluster (also for its tools, such as pg_basebackup): `binDir` when
   * given, else those of its data directory's major version, else the newest.
   */
  async binDir(): Promise<string> {
    return this.options.binDir ?? (await findPostgresBinDir(this.major()));
  }

  /** Creates `dir` for the server's user and checks that user can reach it; returns that user. */
  async prepareDir(): Promise<ServerUser> {
    const user = await serverUser();
    mkdirSync(this.options.dir, { recursive: true });
    if (user) chownSync(this.options.dir, user.uid, user.gid);
    await this.checkReachable(user);
    return user;
  }

  /** The major version that created the data directory (its PG_VERSION); none before initdb. */
  private major(): string | undefined {
    const versionFile = join(this.dataDir, 'PG_VERSION');
    return existsSync(versionFile) ? readFileSync(versionFile, 'utf8').trim() : undefined;
  }

  private logTail(): string {
    return existsSync(this.logFile)
      ? readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n')
      : '';
  }

  /** PostgreSQL runs as another user, who must be able to reach `dir` through every directory above it. */
  private async checkReachable(user: ServerUser): Promise<void> {
    if (!user || (await run('test', ['-w', this.options.dir, '-a', '-x', this.options.dir], user)).code === 0)
      return;
    let blocking = this.options.dir;
    for (let dir = dirname(this.options.dir); dir !== dirname(dir); dir = dirname(dir))
      if ((await run('test', ['-x', dir], user)).code !== 0) blocking = dir;
    throw new Error(
      `PostgreSQL runs as the postgres user, who cannot reach ${this.options.dir}: ${blocking} does not let it ` +
        `through (chmod o+x ${blocking}, or put the run directory elsewhere with SPIRE_DRILL_HOME)`,
    );
  }

  /** Creates the cluster next to its final place and moves it there, so an interrupted initdb leaves nothing half made. */
  private async initdb(binDir: string, user: ServerUser): Promise<void> {
    const partial = `${this.dataDir}.init`;
    rmSync(partial, { recursive: true, force: true });
    const result = await run(
      join(binDir, 'initdb'),
      ['-D', partial, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'],
      user ?? {},
    );
    if (result.code !== 0) {
      rmSync(partial, { recursive: true, force: true });
      throw new Error(`initdb failed for ${this.dataDir}:\n${result.output}`);
    }
    renameSync(partial, this.dataDir);
  }

  private async start(binDir: string, user: ServerUser, deadline: number): Promise<void> {
    // No postmaster runs on it (pid() said so): a lock file left by a crash would only make it refuse,
    // if its pid has since gone to another process.
    rmSync(join(this.dataDir, 'postmaster.pid'), { force: true });
    const out = openSync(this.logFile, 'a');
    const args = ['-D', this.dataDir, '-p', String(this.port), '-k', this.options.dir];
    args.push('-c', 'listen_addresses=127.0.0.1');
    const child = spawn(join(binDir, 'postgres'), args, {
      cwd: this.options.dir,
      detached: true,
      stdio: ['ignore', out, out],
      ...(user ?? {}),
    });
    closeSync(out);
    let exited = false;
    child.once('exit', () => (exited = true));
    child.unref();
    // postmaster.pid appears once it has checked its data directory and taken the port.
    while (this.pid() === undefined) {
      if (exited) throw new Error(`PostgreSQL in ${this.dataDir} exited during start:\n${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`PostgreSQL did not start in time:\n${this.logTail()}`);
      await sleep(100);
    }
  }
}
