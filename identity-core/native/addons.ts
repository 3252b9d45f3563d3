import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Loads a native addon built by `npm run build` (identity-core/native/build.mjs), from source or from
 * dist/. Returns undefined when it was not built, so callers can fall back or explain.
 */
export function loadAddon<T>(name: string): T | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'identity-core', 'native', 'build', `${name}.node`);
    if (existsSync(candidate)) return createRequire(import.meta.url)(candidate) as T;
    dir = dirname(dir);
  }
  return undefined;
}
