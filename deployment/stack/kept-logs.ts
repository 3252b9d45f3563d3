/**
 * The logs of a deployment's processes, kept outside its run directory when a drill does not pass:
 * a drill on a fresh deployment tears it down right after, and the evidence of why would go with it.
 */
import { closeSync, mkdirSync, openSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { deploymentsHome } from '../deployment.js';

/** Of each log, its last part: a long-lived deployment's logs grow without bound. */
const TAIL_BYTES = 2 * 1024 * 1024;

/** Where the logs of drill `runId` are kept: `.drill-logs/<run-id>` in the deployments' home, as the results store. */
export function keptLogsDir(runId: string): string {
  return join(deploymentsHome(), '.drill-logs', runId);
}

function logFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return logFiles(path);
    return e.isFile() && e.name.endsWith('.log') ? [path] : [];
  });
}

function tail(file: string): Buffer {
  const size = statSync(file).size;
  const length = Math.min(size, TAIL_BYTES);
  const buffer = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  return buffer;
}

/** Copies the tail of every `*.log` under `runDir` to `keptLogsDir(runId)`; returns that directory. */
export function keepLogs(runDir: string, runId: string): { dir: string; files: number } {
  const dest = keptLogsDir(runId);
  const files = logFiles(runDir);
  for (const file of files) {
    const target = join(dest, relative(runDir, file));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, tail(file));
  }
  return { dir: dest, files: files.length };
}
