import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './tools.js';

const program = join(repoRoot, 'bin', 'spire-drill.js');

/**
 * Runs the spire-drill CLI to completion; never throws on a non-zero exit. After `timeoutMs` it gets
 * SIGTERM, which stops its run (a drill heals, a suite tears down) so its output says how far it got;
 * after `graceMs` more its whole process group (its dev server too) is killed.
 */
export function runSpireDrill(
  args: string[],
  options: {
    env: NodeJS.ProcessEnv;
    timeoutMs: number;
    graceMs?: number;
    cwd?: string;
    /** SIGTERM, once, as soon as the standard output matches (an operator's Ctrl-C). */
    interruptWhen?: RegExp;
  },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [program, ...args], {
      env: options.env,
      detached: true,
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (options.interruptWhen && !interrupted && options.interruptWhen.test(stdout)) {
        interrupted = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let kill: NodeJS.Timeout | undefined;
    const term = setTimeout(() => {
      stderr += `\n[test harness: SIGTERM after ${options.timeoutMs / 1000} s]\n`;
      child.kill('SIGTERM');
      kill = setTimeout(() => {
        stderr += `\n[test harness: SIGKILL to the process group after ${(options.graceMs ?? 60_000) / 1000} s more]\n`;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, options.graceMs ?? 60_000);
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(term);
      resolve({ code: -1, stdout, stderr: `${stderr}\n[test harness: ${error.message}]` });
    });
    child.on('exit', (code) => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** `spire-drill worker` against `address` as a separate process, its output in `logFile`. */
export function startWorkerProcess(options: {
  address: string;
  home: string;
  logFile: string;
  /** Added to this process's environment (e.g. the kill switch's variable). */
  env?: NodeJS.ProcessEnv;
}): ChildProcess {
  const log = openSync(options.logFile, 'a');
  return spawn(process.execPath, [program, 'worker'], {
    env: {
      ...process.env,
      ...options.env,
      TEMPORAL_ADDRESS: options.address,
      SPIRE_DRILL_HOME: options.home,
    },
    stdio: ['ignore', log, log],
  });
}

/** SIGKILL, as a crash would; resolves once the process is gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}
