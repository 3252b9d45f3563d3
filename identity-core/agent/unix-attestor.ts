import { readFile, readlink } from 'node:fs/promises';
import type { Selector } from '../datastore/records.js';
import type { PeerCredentials } from '../transport/peer-credentials.js';

async function namesById(file: string): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && /^\d+$/.test(id)) names.set(Number(id), name);
  }
  return names;
}

/**
 * Selectors of the `unix` workload attestor. uid, gid and pid come from the kernel's record of the
 * connecting process (SO_PEERCRED), never from anything the client sends; path and supplementary
 * groups are read from /proc for that pid. A process that is gone by then fails attestation.
 */
export async function attestUnixWorkload(credentials: PeerCredentials): Promise<Selector[]> {
  const { pid, uid, gid } = credentials;
  const [exe, status, users, groups] = await Promise.all([
    readlink(`/proc/${pid}/exe`),
    readFile(`/proc/${pid}/status`, 'utf8'),
    namesById('/etc/passwd'),
    namesById('/etc/group'),
  ]);
  const selectors: Selector[] = [
    { type: 'unix', value: `uid:${uid}` },
    { type: 'unix', value: `gid:${gid}` },
    { type: 'unix', value: `pid:${pid}` },
    { type: 'unix', value: `path:${exe}` },
  ];
  const user = users.get(uid);
  if (user) selectors.push({ type: 'unix', value: `user:${user}` });
  const group = groups.get(gid);
  if (group) selectors.push({ type: 'unix', value: `group:${group}` });
  const supplementary = /^Groups:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
  for (const id of supplementary) {
    selectors.push({ type: 'unix', value: `supplementary_gid:${id}` });
    const name = groups.get(Number(id));
    if (name) selectors.push({ type: 'unix', value: `supplementary_group:${name}` });
  }
  return selectors;
}

/** An entry matches when every one of its selectors is among the workload's (SPIRE's subset match). */
export function selectorsMatch(entrySelectors: Selector[], workloadSelectors: Selector[]): boolean {
  if (entrySelectors.length === 0) return false;
  const have = new Set(workloadSelectors.map((s) => `${s.type}:${s.value}`));
  return entrySelectors.every((s) => have.has(`${s.type}:${s.value}`));
}
