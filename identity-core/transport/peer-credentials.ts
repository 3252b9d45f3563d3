import { loadAddon } from '../native/addons.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface PeerCredAddon {
  getPeerCredentials(fd: number): PeerCredentials;
}

let addon: PeerCredAddon | undefined;

/** Kernel-recorded credentials of the process that connected to a Unix socket (SO_PEERCRED). */
export function peerCredentialsOf(fd: number): PeerCredentials {
  addon ??= loadAddon<PeerCredAddon>('peercred');
  if (!addon) throw new Error('peercred addon not built: run `npm run build` (needs a C compiler)');
  return addon.getPeerCredentials(fd);
}
