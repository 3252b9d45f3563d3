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
 * V8 flags per role. The agent allocates briskly but holds little (about 25 MB of live heap serving
 * 100 streams); V8's default young generation grew to ~32 MB there and kept the agent near 150 MB RSS.
 * A 1 MB semi-space brings it to ~117 MB (bench/footprint.ts). The server keeps the default for
 * throughput. bin/tspire-agent.js's shebang carries the same flag for direct runs.
 */
export function nodeFlags(role: 'server' | 'agent'): string[] {
  return role === 'agent' ? ['--max-semi-space-size=1'] : [];
}

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
    return { command: process.execPath, prefix: [...nodeFlags(role), binPath(name)], name };
  }
  const name = role === 'server' ? 'spire-server' : 'spire-agent';
  return { command: join(packageRoot(), 'tools', 'bin', name), prefix: [], name };
}
