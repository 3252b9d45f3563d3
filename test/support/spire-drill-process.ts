import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './tools.js';

const program = join(repoRoot, 'bin', 'spire-drill.js');

/** Runs the spire-drill CLI to completion (SIGTERM after `timeoutMs`); never throws on a non-zero exit. */
export function runSpireDrill(
  args: string[],
  options: { env: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [program, ...args], {
      env: options.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** `spire-drill worker` against `address` as a separate process, its output in `logFile`. */
export function startWorkerProcess(options: {
  address: string;
  home: string;
  logFile: string;
}): ChildProcess {
  const log = openSync(options.logFile, 'a');
  return spawn(process.execPath, [program, 'worker'], {
    env: { ...process.env, TEMPORAL_ADDRESS: options.address, SPIRE_DRILL_HOME: options.home },
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
