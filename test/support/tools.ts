import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Path of a pinned tool built by tools/install.sh, or a reason why it is absent (printed by the skipping test). */
export function pinnedTool(name: 'spire-server' | 'spire-agent' | 'temporal'): {
  path?: string;
  missing?: string;
} {
  const path = join(root, 'tools', 'bin', name);
  if (existsSync(path)) return { path };
  return {
    missing: `${name} is not built at ${path}: run tools/install.sh (needs Go); skipping tests that need it`,
  };
}

export const repoRoot = root;
