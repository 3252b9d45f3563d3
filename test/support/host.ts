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

/** How many processes of each kind (run directory, program, role) run inside `dir`. */
export function processCounts(dir: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { cwd, argv } of processesIn(dir)) {
    const program =
      argv.find((a) => /(tspire-(server|agent)|tcp-balancer-main)\.js$/.test(a)) ??
      argv.find((a) => a.endsWith('.js')) ??
      argv[0]!;
    const role = argv.some((a) => a.endsWith('upstream-agent.conf')) ? ' (upstream)' : '';
    const key = `${cwd.slice(dir.length)} ${program.split('/').at(-1)}${role}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Processes (other than this one) whose command line names `path`: what a run left behind. */
export function processesUsing(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (command.includes(path)) found.push(`${pid}: ${command}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}
