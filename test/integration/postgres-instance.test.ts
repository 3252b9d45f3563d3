import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Deployment } from '../../deployment/deployment.js';
import { freePort, portAcceptsConnections } from '../../deployment/host/free-port.js';
import {
  findPostgresBinDir,
  MissingPostgresBinaries,
  PostgresInstance,
} from '../../deployment/postgres/postgres-instance.js';
import { parseTopology } from '../../deployment/topology/topology.js';
import { postgresBinDirOrSkip, queryOnce as query } from '../support/managed-postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { repoRoot } from '../support/tools.js';

/**
 * The managed datastore: a PostgreSQL server of the deployment's own, run from this host's binaries
 * as a detached process that a new PostgresInstance object (a new worker) adopts. Checked from the
 * outside: connections, the process table, its port and its log.
 */
const binDir = await postgresBinDirOrSkip('the managed PostgreSQL tests');

/** The real uid a process runs as, from /proc. */
const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe('finding PostgreSQL server binaries', () => {
  const run = makeRunDir('sdpgb-');
  afterAll(() => run.remove());

  it('says what it needs and where it looked when there are none', async () => {
    const empty = join(run.dir, 'empty');
    mkdirSync(empty);
    const search = { debian: empty, pgdg: empty, path: empty };
    const refused = await findPostgresBinDir(undefined, search).catch((error: Error) => error);
    expect(refused).toBeInstanceOf(MissingPostgresBinaries);
    expect((refused as Error).message).toMatch(
      /^datastore: managed needs PostgreSQL server binaries \(initdb, postgres\): none found in .*empty\/\*\/bin.*pg_config --bindir/,
    );
  });

  it.skipIf(!binDir)('refuses a data directory of a major version it has no binaries for', async () => {
    await expect(findPostgresBinDir('7')).rejects.toThrow(
      /created by PostgreSQL 7, and no PostgreSQL 7 server/,
    );
  });
});

describe.skipIf(!binDir)('PostgresInstance', () => {
  const run = makeRunDir('sdpg-');
  const instances: PostgresInstance[] = [];
  afterAll(async () => {
    for (const instance of instances) await instance.stop('immediate').catch(() => undefined);
    run.remove();
  });

  it('initializes on first use, outlives its starter, is adopted, survives an immediate stop with its data', async () => {
    const port = await freePort();
    const dir = join(run.dir, 'pg');
    const first = new PostgresInstance({ dir, port });
    instances.push(first);
    expect(first.pid()).toBeUndefined();
    expect(await first.isUp()).toBe(false);

    // Created and started by another process that then exits, as a worker does: the server outlives it.
    const module = join(repoRoot, 'dist', 'deployment', 'postgres', 'postgres-instance.js');
    if (!existsSync(module)) throw new Error(`${module} is missing: run npm run build first`);
    const started = Date.now();
    const starter = await new Promise<{ error: Error | null; stdout: string }>((resolve) =>
      execFile(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { PostgresInstance } = await import(${JSON.stringify(pathToFileURL(module).href)});
           const postgres = new PostgresInstance(${JSON.stringify({ dir, port })});
           await postgres.ensureRunning(90000);
           console.log(postgres.pid());`,
        ],
        { timeout: 120_000 },
        (error, stdout, stderr) =>
          resolve({ error: error && new Error(`${error.message}\n${stderr}`), stdout }),
      ),
    );
    expect(starter.error).toBeNull();
    console.log(`managed PostgreSQL: initdb and start took ${Date.now() - started} ms (${binDir})`);
    const pid = first.pid()!;
    expect(pid).toBe(Number(starter.stdout.trim()));
    await first.ensureRunning();
    expect(first.pid()).toBe(pid);
    expect(await first.isUp()).toBe(true);
    expect(await portAcceptsConnections(port)).toBe(true);
    // PostgreSQL refuses root: as root, it runs as another user.
    if (process.getuid?.() === 0) expect(uidOf(pid)).not.toBe(0);

    const url = await first.createDatabase('drill_data');
    expect(await first.createDatabase('drill_data')).toBe(url);
    await query(url, 'CREATE TABLE marks (note text); INSERT INTO marks VALUES ($$before the crash$$)');
    await expect(first.createDatabase('Bad-Name')).rejects.toThrow(/invalid database name/);

    // A new worker's object finds the same server instead of starting a twin.
    const second = new PostgresInstance({ dir, port });
    expect(second.pid()).toBe(pid);
    await second.ensureRunning();
    expect(second.pid()).toBe(pid);

    await second.stop('immediate');
    expect(first.pid()).toBeUndefined();
    expect(await first.isUp()).toBe(false);
    expect(await portAcceptsConnections(port)).toBe(false);
    await second.stop('immediate');
    await second.stop('fast');

    // A lock file left by a crash, whose pid now belongs to another process of the server's user
    // (PostgreSQL itself would take that for a live postmaster): not ours, and no obstacle to starting.
    const owner = statSync(first.dataDir);
    const squatter = spawn('sleep', ['60'], { uid: owner.uid, gid: owner.gid, stdio: 'ignore' });
    try {
      writeFileSync(join(first.dataDir, 'postmaster.pid'), `${squatter.pid}\n${first.dataDir}\n`);
      expect(first.pid()).toBeUndefined();
      await first.ensureRunning();
      expect([pid, squatter.pid]).not.toContain(first.pid());
    } finally {
      squatter.kill();
    }
    const rows = await query(url, 'SELECT note FROM marks');
    expect(rows.rows).toEqual([{ note: 'before the crash' }]);
    // An immediate stop is a crash for PostgreSQL: the restart recovered from its WAL.
    expect(readFileSync(first.logFile, 'utf8')).toMatch(
      /not properly shut down; automatic recovery in progress/,
    );

    await first.stop('fast');
    expect(first.pid()).toBeUndefined();
    expect(await portAcceptsConnections(port)).toBe(false);
  }, 180_000);

  it.skipIf(process.getuid?.() !== 0)(
    'names the directory that keeps the postgres user out of its run directory',
    async () => {
      const locked = join(run.dir, 'locked');
      mkdirSync(join(locked, 'deep'), { recursive: true });
      chmodSync(locked, 0o700);
      const blocked = new PostgresInstance({ dir: join(locked, 'deep', 'pg'), port: await freePort() });
      await expect(blocked.ensureRunning()).rejects.toThrow(
        new RegExp(`cannot reach .*deep/pg: ${locked} does not let it through \\(chmod o\\+x ${locked}`),
      );
    },
  );

  it('runs as the datastore of a deployment: databases of every group, listed as leftovers until stopped', async () => {
    process.env.SPIRE_DRILL_HOME = join(run.dir, 'deployments');
    const topology = parseTopology({
      name: 'pgtest',
      trustDomain: 'pg.test',
      upstream: { servers: 2, loadBalancer: true, datastore: 'managed' },
    });
    const deployment = await Deployment.open(`pg-${process.pid}`, topology);
    try {
      const postgres = deployment.postgres()!;
      instances.push(postgres);
      expect(deployment.plan.postgres).toEqual({ port: postgres.port, databases: ['upstream'] });
      expect(deployment.plan.upstream.database).toEqual({
        type: 'postgres',
        connectionString: postgres.connectionString('upstream'),
      });
      // Reopened from plan.json (a new worker), it is the same instance.
      expect((await Deployment.open(deployment.id)).postgres()!.port).toBe(postgres.port);

      await deployment.ensureDatastore();
      await deployment.ensureDatastore();
      const databases = await query(postgres.connectionString(), 'SELECT datname FROM pg_database');
      expect(databases.rows.map((r: { datname: string }) => r.datname)).toContain('upstream');
      const leftovers = await deployment.leftovers();
      expect(leftovers).toEqual(
        expect.arrayContaining([
          `process postgres (pid ${postgres.pid()}) serving ${postgres.dataDir}`,
          `port 127.0.0.1:${postgres.port} accepts connections`,
          `socket ${postgres.socketPath}`,
        ]),
      );

      await deployment.stopAll();
      expect(await deployment.leftovers()).toEqual([]);
    } finally {
      await deployment.stopAll();
      await deployment.removeData();
    }
  }, 180_000);
});
