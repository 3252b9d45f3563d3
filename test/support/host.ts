import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface HostProcess {
  pid: number;
  /** Working directory. */
  cwd: string;
  argv: string[];
}

/** Live processes whose working directory is inside `dir` (deployments start theirs in their run directory). */
export function processesIn(dir: string): HostProcess[] {
  const found: HostProcess[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (!cwd.startsWith(dir)) continue;
      found.push({ pid: Number(pid), cwd, argv: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}
