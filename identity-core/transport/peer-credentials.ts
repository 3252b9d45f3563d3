import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface PeerCredAddon {
  getPeerCredentials(fd: number): PeerCredentials;
}

/** The addon is built from identity-core/transport/native by `npm run build`; look for it from source and from dist. */
function loadAddon(): PeerCredAddon {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'identity-core', 'transport', 'native', 'build', 'peercred.node');
    if (existsSync(candidate)) return createRequire(import.meta.url)(candidate) as PeerCredAddon;
    dir = dirname(dir);
  }
  throw new Error('peercred addon not built: run `npm run build` (needs a C compiler)');
}

let addon: PeerCredAddon | undefined;

/** Kernel-recorded credentials of the process that connected to a Unix socket (SO_PEERCRED). */
export function peerCredentialsOf(fd: number): PeerCredentials {
  addon ??= loadAddon();
  return addon.getPeerCredentials(fd);
}
