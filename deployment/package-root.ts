import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file whether it runs from source or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above deployment/');
    dir = parent;
  }
  return dir;
}

export function binPath(name: 'tspire-server' | 'tspire-agent'): string {
  return join(packageRoot(), 'bin', `${name}.js`);
}

export type Implementation = 'tspire' | 'spire';

/**
 * How to run a server or agent of either implementation: the bundled one through node, or real SPIRE
 * from the pinned build in tools/bin. Both take the same subcommands, flags and config files.
 */
export function programFor(
  implementation: Implementation,
  role: 'server' | 'agent',
): { command: string; prefix: string[]; name: string } {
  if (implementation === 'tspire') {
    const name = role === 'server' ? 'tspire-server' : 'tspire-agent';
    return { command: process.execPath, prefix: [binPath(name)], name };
  }
  const name = role === 'server' ? 'spire-server' : 'spire-agent';
  return { command: join(packageRoot(), 'tools', 'bin', name), prefix: [], name };
}
