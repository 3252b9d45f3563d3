import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { loseDatastore, restoreBackup, takeBackup } from '../../deployment/postgres/postgres-backup.js';
import { PostgresInstance } from '../../deployment/postgres/postgres-instance.js';
import { PostgresReplica } from '../../deployment/postgres/postgres-replica.js';
import { postgresBinDirOrSkip, queryOnce as query, notesIn as notes } from '../support/managed-postgres.js';
import { makeRunDir } from '../support/run-dir.js';

/**
 * A physical backup of a whole managed PostgreSQL, and a lost datastore brought back from it, with
 * this host's binaries. Checked over connections and on disk.
 */
const binDir = await postgresBinDirOrSkip('the PostgreSQL backup tests');

describe.skipIf(!binDir)('PostgreSQL backup and restore', () => {
  const run = makeRunDir('sdpgk-');
  const instances: PostgresInstance[] = [];
  afterAll(async () => {
    for (const instance of instances) await instance.stop('immediate').catch(() => undefined);
    run.remove();
  });

  it('restores what was backed up and drops what came after, idempotently; a lost datastore comes back', async () => {
    const primary = new PostgresInstance({ dir: join(run.dir, 'primary'), port: await freePort() });
    instances.push(primary);
    await primary.ensureRunning(90_000);
    const url = await primary.createDatabase('drill_data');
    await query(url, `CREATE TABLE marks (note text); INSERT INTO marks VALUES ('before the backup')`);

    const backupDir = join(run.dir, 'backups', 'first');
    const before = Date.now();
    const backup = await takeBackup(primary, backupDir);
    console.log(`backup: ${backup.bytes} bytes in ${Date.now() - before} ms`);
    expect(backup.dir).toBe(backupDir);
    expect(backup.takenAt).toBeGreaterThanOrEqual(before);
    expect(backup.takenAt).toBeLessThanOrEqual(Date.now());
    expect(backup.bytes).toBeGreaterThan(1_000_000);
    expect(existsSync(join(backupDir, 'data', 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(backupDir, 'data.partial'))).toBe(false);
    // Complete already: returned as it is, not taken again.
    expect(await takeBackup(primary, backupDir)).toEqual(backup);

    await query(url, `INSERT INTO marks VALUES ('after the backup')`);
    let started = Date.now();
    await restoreBackup(primary, backupDir);
    console.log(`restore: ${Date.now() - started} ms`);
    expect(await notes(url)).toEqual(['before the backup']);
    const data = statSync(primary.dataDir);
    expect(data.mode & 0o777).toBe(0o700);
    expect(data.uid).toBe(statSync(join(backupDir, 'data')).uid);
    if (process.getuid?.() === 0) expect(data.uid).not.toBe(0);
    expect(existsSync(join(primary.dataDir, 'standby.signal'))).toBe(false);

    // Running from this backup already: left alone, not restored again.
    const pid = primary.pid()!;
    await query(url, `INSERT INTO marks VALUES ('after the restore')`);
    await restoreBackup(primary, backupDir);
    expect(primary.pid()).toBe(pid);
    expect(await notes(url)).toEqual(['after the restore', 'before the backup']);

    await loseDatastore(primary);
    expect(primary.pid()).toBeUndefined();
    expect(existsSync(primary.dataDir)).toBe(false);
    await loseDatastore(primary);
    started = Date.now();
    await restoreBackup(primary, backupDir);
    console.log(`restore of a lost datastore: ${Date.now() - started} ms`);
    expect(await notes(url)).toEqual(['before the backup']);
    expect(readFileSync(primary.logFile, 'utf8')).toMatch(/redo done at/);

    const empty = join(run.dir, 'backups', 'empty');
    mkdirSync(empty);
    await expect(restoreBackup(primary, empty)).rejects.toThrow(
      /holds no complete backup \(no backup.json\)/,
    );
    expect(primary.pid()).toBeDefined();
  }, 240_000);

  it('its standby, recreated after the restore, serves the restored primary', async () => {
    const primary = new PostgresInstance({ dir: join(run.dir, 'replicated'), port: await freePort() });
    instances.push(primary);
    const replica = new PostgresReplica({ primary, dir: join(run.dir, 'standby'), port: await freePort() });
    instances.push(replica.instance);
    await primary.ensureRunning(90_000);
    await query(
      primary.connectionString(),
      `CREATE TABLE marks (note text); INSERT INTO marks VALUES ('kept')`,
    );
    const backup = await takeBackup(primary, join(run.dir, 'backups', 'replicated'));
    await replica.ensureRunning(90_000);
    await query(primary.connectionString(), `INSERT INTO marks VALUES ('lost')`);
    await replica.waitCaughtUp(10_000);
    expect(await notes(replica.connectionString())).toEqual(['kept', 'lost']);

    await restoreBackup(primary, backup.dir);
    const pid = replica.instance.pid();
    const started = Date.now();
    await replica.recreate(90_000);
    console.log(`standby recreated in ${Date.now() - started} ms`);
    expect(replica.instance.pid()).not.toBe(pid);
    await query(primary.connectionString(), `INSERT INTO marks VALUES ('after the restore')`);
    await replica.waitCaughtUp(10_000);
    expect(await notes(replica.connectionString())).toEqual(['after the restore', 'kept']);
    expect(await replica.streaming()).toBe(true);
  }, 240_000);
});
