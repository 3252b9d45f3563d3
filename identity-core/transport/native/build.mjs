// Compiles peercred.c into build/peercred.node with the system C compiler and Node's own headers.
// node-gyp would download headers, which this offline machine cannot, so call cc directly.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'peercred.c');
const output = join(here, 'build', 'peercred.node');
const prefix = process.config.variables.node_prefix ?? dirname(dirname(process.execPath));
const candidates = [
  join(prefix, 'include', 'node'),
  join(dirname(dirname(process.execPath)), 'include', 'node'),
];
const includeDir = candidates.find((dir) => existsSync(join(dir, 'node_api.h')));

if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) process.exit(0);
if (!includeDir) {
  console.error(
    `peercred: node_api.h not found in ${candidates.join(' or ')}; the unix workload attestor cannot be built`,
  );
  process.exit(1);
}
mkdirSync(dirname(output), { recursive: true });
const cc = process.env.CC ?? 'cc';
execFileSync(
  cc,
  [
    '-shared',
    '-fPIC',
    '-O2',
    '-Wall',
    '-DNODE_GYP_MODULE_NAME=peercred',
    '-I',
    includeDir,
    source,
    '-o',
    output,
  ],
  {
    stdio: 'inherit',
  },
);
