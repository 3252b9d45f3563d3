import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { PostgresInstance } from '../../deployment/postgres/postgres-instance.js';
import { PostgresReplica } from '../../deployment/postgres/postgres-replica.js';
import { postgresBinDirOrSkip, queryOnce as query, notesIn as notes } from '../support/managed-postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { waitFor } from '../support/waits.js';

/**
 * A hot standby of a managed PostgreSQL, made with pg_basebackup from this host's binaries: what it
 * serves, what it refuses, and how it lives through its primary's outage. Checked over connections.
 */
const binDir = await postgresBinDirOrSkip('the PostgreSQL replica tests');

describe.skipIf(!binDir)('PostgresReplica', () => {
  const run = makeRunDir('sdpgr-');
  const instances: PostgresInstance[] = [];
  afterAll(async () => {
    for (const instance of instances) await instance.stop('immediate').catch(() => undefined);
    run.remove();
  });

  it('serves what the primary wrote, refuses writes, outlives its primary, is adopted and catches up', async () => {
    const primary = new PostgresInstance({ dir: join(run.dir, 'primary'), port: await freePort() });
    instances.push(primary);
    const options = { primary, dir: join(run.dir, 'standby'), port: await freePort() };
    const replica = new PostgresReplica(options);
    instances.push(replica.instance);
    await primary.ensureRunning(90_000);
    await query(primary.connectionString(), 'CREATE TABLE marks (note text)');

    let started = Date.now();
    await replica.ensureRunning(90_000);
    console.log(`standby: pg_basebackup and start took ${Date.now() - started} ms`);
    expect(existsSync(`${replica.instance.dataDir}.init`)).toBe(false);
    expect((await query(replica.connectionString(), 'SELECT pg_is_in_recovery() AS r')).rows).toEqual([
      { r: true },
    ]);
    await waitFor(
      'the replica to stream from its primary',
      async () => (await replica.streaming()) || undefined,
      10_000,
    );

    await query(primary.connectionString(), `INSERT INTO marks VALUES ('streamed')`);
    started = Date.now();
    await replica.waitCaughtUp(10_000);
    console.log(`standby: caught up with one insert in ${Date.now() - started} ms`);
    expect(await notes(replica.connectionString())).toEqual(['streamed']);
    await expect(query(replica.connectionString(), `INSERT INTO marks VALUES ('refused')`)).rejects.toThrow(
      /cannot execute INSERT in a read-only transaction/,
    );

    // Replay paused: the wait gives up, saying how far behind the standby is.
    await query(replica.connectionString(), 'SELECT pg_wal_replay_pause()');
    await query(primary.connectionString(), `INSERT INTO marks VALUES ('held back')`);
    await expect(replica.waitCaughtUp(1000)).rejects.toThrow(
      /did not replay the WAL of the primary \(port \d+\) up to [0-9A-F]+\/[0-9A-F]+ within 1000 ms: [1-9]\d* bytes behind \(replayed up to [0-9A-F]+\/[0-9A-F]+\)/,
    );
    await query(replica.connectionString(), 'SELECT pg_wal_replay_resume()');
    await replica.waitCaughtUp(10_000);
    expect(await notes(replica.connectionString())).toEqual(['held back', 'streamed']);

    // A new worker's object finds the same standby instead of starting a twin.
    const pid = replica.instance.pid()!;
    const adopting = new PostgresReplica(options);
    await adopting.ensureRunning();
    expect(adopting.instance.pid()).toBe(pid);

    // The primary down: the standby still serves reads, and a restarted standby too.
    await primary.stop('fast');
    expect(await notes(replica.connectionString())).toEqual(['held back', 'streamed']);
    await waitFor(
      'the replica to stop streaming',
      async () => !(await replica.streaming()) || undefined,
      10_000,
    );
    await expect(replica.waitCaughtUp(1000)).rejects.toThrow(
      new RegExp(`the primary on port ${primary.port} does not answer`),
    );
    await replica.stop('fast');
    expect(await replica.streaming()).toBe(false);
    const restarted = new PostgresReplica(options);
    started = Date.now();
    await restarted.ensureRunning();
    console.log(`standby: restart with its primary down took ${Date.now() - started} ms`);
    expect(restarted.instance.pid()).not.toBe(pid);
    expect(await notes(restarted.connectionString())).toEqual(['held back', 'streamed']);

    // No standby can be made while the primary is down, and a failed attempt leaves nothing behind.
    const orphan = new PostgresReplica({ primary, dir: join(run.dir, 'orphan'), port: await freePort() });
    instances.push(orphan.instance);
    await expect(orphan.ensureRunning()).rejects.toThrow(
      new RegExp(`pg_basebackup from the primary on port ${primary.port} failed`),
    );
    expect(existsSync(orphan.instance.dataDir)).toBe(false);
    expect(existsSync(`${orphan.instance.dataDir}.init`)).toBe(false);

    // The primary back: the standby reconnects by itself and catches up.
    await primary.ensureRunning();
    await query(primary.connectionString(), `INSERT INTO marks VALUES ('after the outage')`);
    started = Date.now();
    await restarted.waitCaughtUp(30_000);
    console.log(`standby: reconnected and caught up ${Date.now() - started} ms after its primary came back`);
    expect(await notes(restarted.connectionString())).toEqual(['after the outage', 'held back', 'streamed']);
    expect(await restarted.streaming()).toBe(true);
  }, 240_000);
});
