import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A short temporary directory (Unix socket paths must stay under 108 bytes); kept when KEEP_RUN_DIRS is set. */
export function makeRunDir(prefix = 'sd-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    remove: () => (process.env.KEEP_RUN_DIRS ? undefined : rmSync(dir, { recursive: true, force: true })),
  };
}
