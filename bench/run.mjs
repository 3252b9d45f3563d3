// `npm run bench -- NAME`: runs the compiled benchmark dist/bench/NAME.js, which prints one JSON line.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(root, 'dist', 'bench');
const available = existsSync(dist)
  ? readdirSync(dist)
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.slice(0, -3))
  : [];
const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(
    `usage: npm run bench -- NAME [args]; NAME is one of: ${available.join(', ') || '(none built)'}`,
  );
  process.exit(2);
}
const result = spawnSync(process.execPath, [join(dist, `${name}.js`), ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
