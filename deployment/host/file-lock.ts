/**
 * A lock file naming its holder's pid, for work that two processes of this host must not do at once
 * (a drill and the fault watchdog; two workers opening one PGlite store). A lock whose holder died
 * (a worker killed mid-way) is taken over rather than waited on for ever.
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { processAlive } from './managed-process.js';
import { sleep } from './poll.js';

/** The pid in a lock file; 0 when unreadable, undefined when the lock was released meanwhile. */
function readHolder(lock: string): number | undefined {
  try {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    return Number.isInteger(pid) ? pid : 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Runs `fn` holding the lock file `lock` (its directory must exist). Past `timeoutMs` of waiting,
 * throws with `heldTooLong`'s words.
 */
export async function withFileLock<T>(
  lock: string,
  fn: () => Promise<T>,
  timeoutMs: number,
  heldTooLong: (holder: number) => string,
): Promise<T> {
  // Written whole first, then linked into place: link fails if the lock exists, so taking it is atomic.
  const mine = join(dirname(lock), `${basename(lock)}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  writeFileSync(mine, `${process.pid}\n`);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        linkSync(mine, lock);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readHolder(lock);
      if (holder === undefined) continue;
      if (holder > 0 && !processAlive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(heldTooLong(holder));
      await sleep(100);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
