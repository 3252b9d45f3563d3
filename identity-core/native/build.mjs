// Compiles each addon here into build/<name>.node with the system C compiler and Node's own headers
// (which include the OpenSSL headers matching the OpenSSL statically linked into node). node-gyp
// would download headers, which this offline machine cannot, so call cc directly.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDONS = {
  peercred: 'the unix workload attestor (SO_PEERCRED)',
  'ecdsa-p256': 'fast CSR signature checks on the SVID minting path',
};

const here = dirname(fileURLToPath(import.meta.url));
const prefix = process.config.variables.node_prefix ?? dirname(dirname(process.execPath));
const candidates = [
  join(prefix, 'include', 'node'),
  join(dirname(dirname(process.execPath)), 'include', 'node'),
];
const includeDir = candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
if (!includeDir) {
  console.error(`native addons: node_api.h not found in ${candidates.join(' or ')}; cannot build them`);
  process.exit(1);
}
const cc = process.env.CC ?? 'cc';
mkdirSync(join(here, 'build'), { recursive: true });
for (const [name, purpose] of Object.entries(ADDONS)) {
  const source = join(here, `${name}.c`);
  const output = join(here, 'build', `${name}.node`);
  if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) continue;
  try {
    // Symbols (N-API, OpenSSL) resolve against the running node binary at load time.
    execFileSync(
      cc,
      [
        '-shared',
        '-fPIC',
        '-O2',
        '-Wall',
        `-DNODE_GYP_MODULE_NAME=${name.replace('-', '_')}`,
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
  } catch {
    console.error(`native addons: building ${name} (${purpose}) failed`);
    process.exit(1);
  }
}
