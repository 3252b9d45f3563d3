/**
 * The fault watchdog of a deployment: one detached process (`fault-watchdog`, pid and log in the run
 * directory) that heals any fault whose lease lapsed, so a drill whose worker died and never came
 * back leaves nothing broken. Started on the first injection, adopted afterwards, stopped by
 * Deployment.stopAll; it exits by itself once the run directory is gone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Deployment } from '../deployment.js';
import { findProcess, startProcess, type ManagedProcess } from '../host/managed-process.js';
import { packageRoot } from '../host/package-root.js';
import { pollUntilDone } from '../host/poll.js';

export const WATCHDOG_NAME = 'fault-watchdog';

/** The watchdog running for this deployment: adopted when it runs, else started and seen to start watching. */
export async function ensureWatchdog(deployment: Deployment, timeoutMs = 15_000): Promise<ManagedProcess> {
  const runDir = deployment.plan.runDir;
  const running = findProcess(runDir, WATCHDOG_NAME);
  if (running) return running;
  const script = join(packageRoot(), 'dist', 'deployment', 'lease', 'fault-watchdog-main.js');
  const logFile = join(runDir, `${WATCHDOG_NAME}.log`);
  const earlier = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
  const watchdog = startProcess(
    runDir,
    WATCHDOG_NAME,
    process.execPath,
    [script, '--deployment', deployment.id],
    {
      SPIRE_DRILL_HOME: dirname(runDir),
    },
  );
  try {
    await pollUntilDone(
      async () => {
        if (!watchdog.isRunning())
          throw new Error(`the fault watchdog exited during start:\n${watchdog.log().slice(earlier)}`);
        return watchdog.log().slice(earlier).includes('"watching"') ? undefined : 'not watching';
      },
      Date.now() + timeoutMs,
      () => `the fault watchdog did not start within ${timeoutMs} ms:\n${watchdog.log().slice(earlier)}`,
      100,
    );
  } catch (error) {
    // A watchdog that never began watching is of no use: gone, so the next injection starts another.
    await watchdog.stop();
    throw error;
  }
  return watchdog;
}
