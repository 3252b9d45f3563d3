import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PostgresInstance, run, serverUser } from './postgres-instance.js';

/** A physical copy of a whole PostgresInstance: `<dir>/data`, complete once `<dir>/backup.json` exists. */
export interface PostgresBackup {
  dir: string;
  /** When pg_basebackup started (ms since the epoch). */
  takenAt: number;
  /** Size of the copied data directory. */
  bytes: number;
}

/** Written last: a backup directory without it holds at most an interrupted copy. */
const MANIFEST = 'backup.json';
/** In a restored data directory: the takenAt of the backup it came from. */
const RESTORED_FROM = 'spire-drill-restored-from.json';

function completeBackup(dir: string): PostgresBackup | undefined {
  const manifest = join(dir, MANIFEST);
  if (!existsSync(manifest)) return undefined;
  const { takenAt, bytes } = JSON.parse(readFileSync(manifest, 'utf8')) as { takenAt: number; bytes: number };
  return { dir, takenAt, bytes };
}

function restoredFrom(dataDir: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(dataDir, RESTORED_FROM), 'utf8')) as { takenAt: number }).takenAt;
  } catch {
    return undefined;
  }
}

const sizeOf = (dir: string) =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => lstatSync(join(dir, name)))
    .reduce((total, stat) => total + (stat.isFile() ? stat.size : 0), 0);

/**
 * Copies the running `instance` whole with pg_basebackup, WAL included, so that the copy starts on
 * its own. Idempotent: a complete backup already in `backupDir` is returned as it is.
 */
export async function takeBackup(instance: PostgresInstance, backupDir: string): Promise<PostgresBackup> {
  const complete = completeBackup(backupDir);
  if (complete) return complete;
  const user = await serverUser();
  mkdirSync(backupDir, { recursive: true });
  // pg_basebackup runs as the server's user, who creates the copy in here.
  if (user) chownSync(backupDir, user.uid, user.gid);
  const data = join(backupDir, 'data');
  const partial = `${data}.partial`;
  // Left by an interrupted run (no manifest): start over.
  rmSync(data, { recursive: true, force: true });
  rmSync(partial, { recursive: true, force: true });
  const takenAt = Date.now();
  const args = ['-h', '127.0.0.1', '-p', String(instance.port), '-U', 'postgres', '-D', partial];
  // A fast checkpoint starts the copy now rather than after a checkpoint spread over minutes.
  args.push('-X', 'stream', '--checkpoint=fast');
  const result = await run(join(await instance.binDir(), 'pg_basebackup'), args, user ?? {});
  if (result.code !== 0) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(
      `pg_basebackup of PostgreSQL on port ${instance.port} into ${backupDir} failed (it must be running):\n${result.output}`,
    );
  }
  renameSync(partial, data);
  const backup = { dir: backupDir, takenAt, bytes: sizeOf(data) };
  writeFileSync(`${join(backupDir, MANIFEST)}.tmp`, JSON.stringify({ takenAt, bytes: backup.bytes }));
  renameSync(`${join(backupDir, MANIFEST)}.tmp`, join(backupDir, MANIFEST));
  return backup;
}

/**
 * Replaces `instance`'s data with the backup in `backupDir` and starts it: a lost datastore brought
 * back, everything written after the backup gone. Idempotent: an instance already running from this
 * backup is left as it is. Its standbys (PostgresReplica) have replayed WAL the restored primary
 * never wrote, and would stream a diverging history from it: recreate() them.
 */
export async function restoreBackup(
  instance: PostgresInstance,
  backupDir: string,
  timeoutMs = 60_000,
): Promise<void> {
  const backup = completeBackup(backupDir);
  if (!backup)
    throw new Error(`${backupDir} holds no complete backup (no ${MANIFEST}): take one with takeBackup`);
  if (instance.pid() !== undefined && restoredFrom(instance.dataDir) === backup.takenAt)
    return instance.ensureRunning(timeoutMs);
  await instance.stop('immediate');
  const user = await instance.prepareDir();
  const old = `${instance.dataDir}.old`;
  const partial = `${instance.dataDir}.restore`;
  rmSync(old, { recursive: true, force: true });
  rmSync(partial, { recursive: true, force: true });
  // Moved away before deleting, so that an interrupted delete leaves no half data directory in place.
  if (existsSync(instance.dataDir)) renameSync(instance.dataDir, old);
  rmSync(old, { recursive: true, force: true });
  // cp -a keeps the copy's owner (the server's user) and its 0700, without which PostgreSQL refuses it.
  const copy = await run('cp', ['-a', join(backupDir, 'data'), partial]);
  if (copy.code !== 0) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(`copying the backup ${backupDir} to ${partial} failed:\n${copy.output}`);
  }
  // Started as a primary: it replays the backup's own WAL and opens, instead of waiting for more.
  for (const signal of ['standby.signal', 'recovery.signal']) rmSync(join(partial, signal), { force: true });
  const marker = join(partial, RESTORED_FROM);
  writeFileSync(marker, JSON.stringify({ backup: backupDir, takenAt: backup.takenAt }));
  if (user) chownSync(marker, user.uid, user.gid);
  renameSync(partial, instance.dataDir);
  await instance.ensureRunning(timeoutMs);
}

/** The datastore lost: the server stopped like a crash and its data directory deleted (idempotent). */
export async function loseDatastore(instance: PostgresInstance): Promise<void> {
  await instance.stop('immediate');
  rmSync(instance.dataDir, { recursive: true, force: true });
}
