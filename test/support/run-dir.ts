import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A short temporary directory (Unix socket paths must stay under 108 bytes); kept when KEEP_RUN_DIRS is set. */
export function makeRunDir(prefix = 'sd-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // A managed PostgreSQL inside runs as the postgres user, who must be let through (not let read).
  chmodSync(dir, 0o711);
  return {
    dir,
    remove: () => (process.env.KEEP_RUN_DIRS ? undefined : rmSync(dir, { recursive: true, force: true })),
  };
}
