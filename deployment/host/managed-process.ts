import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './poll.js';

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
  log(): string;
}

/**
 * Starts a program detached from the caller, output to `<runDir>/<name>.log` and its pid in
 * `<runDir>/<name>.pid`, so it outlives the process that started it and can be found again.
 */
export function startProcess(
  runDir: string,
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  /** Run under this group id (needs root): lets unix:gid selectors tell processes of one user apart. */
  gid?: number,
): ManagedProcess {
  const logFile = join(runDir, `${name}.log`);
  const pidFile = join(runDir, `${name}.pid`);
  const out = openSync(logFile, 'a');
  const child = spawn(command, args, {
    cwd: runDir,
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, ...env },
    ...(gid !== undefined ? { gid } : {}),
  });
  closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${command}`);
  const pid = child.pid;
  writeFileSync(pidFile, `${pid}\n`);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() === String(pid))
        rmSync(pidFile, { force: true });
      resolve(code ?? signal ?? 'unknown');
    });
  });
  child.unref();

  const signal = async (sig: NodeJS.Signals, graceMs: number) => {
    if (!running) return;
    try {
      process.kill(pid, sig);
    } catch {
      return;
    }
    // The child is unref'd so it never holds the caller open; while waiting for it to go, it must.
    child.ref();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const outcome = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout' && running) {
      process.kill(pid, 'SIGKILL');
      await exited;
    }
    child.unref();
  };

  return {
    name,
    pid,
    logFile,
    exited,
    isRunning: () => running,
    stop: (graceMs = 5000) => signal('SIGTERM', graceMs),
    kill: () => signal('SIGKILL', 5000),
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}

/**
 * Whether a process with this pid runs: signal 0 checks without sending anything (EPERM: it exists
 * but is another user's, PostgreSQL's say), and a zombie, exited but not yet reaped, does not count.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * A process this run directory started earlier, perhaps from another (now dead) worker: its pid file
 * names it, and its working directory proves it is ours and not a recycled pid.
 */
export function findProcess(runDir: string, name: string): ManagedProcess | undefined {
  const pidFile = join(runDir, `${name}.pid`);
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return undefined;
  let cwd: string;
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
  if (cwd !== runDir) return undefined;
  const logFile = join(runDir, `${name}.log`);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    const timer = setInterval(() => {
      if (processAlive(pid)) return;
      running = false;
      clearInterval(timer);
      resolve('unknown');
    }, 250);
    timer.unref();
  });
  const signal = async (sig: NodeJS.Signals, graceMs: number) => {
    if (!processAlive(pid)) return;
    process.kill(pid, sig);
    const deadline = Date.now() + graceMs;
    while (processAlive(pid) && Date.now() < deadline) await sleep(100);
    if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    while (processAlive(pid)) await sleep(50);
    running = false;
  };
  return {
    name,
    pid,
    logFile,
    exited,
    isRunning: () => running && processAlive(pid),
    stop: (graceMs = 5000) => signal('SIGTERM', graceMs),
    kill: () => signal('SIGKILL', 5000),
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}
