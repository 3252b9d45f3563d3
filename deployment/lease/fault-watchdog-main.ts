import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { Deployment, deploymentsHome, validateDeploymentId } from '../deployment.js';
import { healLapsedFaults } from '../faults/fault-lifecycle.js';
import { activeLeases } from './fault-lease.js';
import { sleep } from '../host/poll.js';

/**
 * `fault-watchdog --deployment ID`: every second, heals the deployment's faults whose lease lapsed;
 * exits when the run directory is gone. Logs JSON lines. SPIRE_DRILL_HOME says where deployments live.
 */
const program = new Command('fault-watchdog')
  .requiredOption('--deployment <id>', 'the deployment to watch', (value: string) => {
    try {
      return validateDeploymentId(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  })
  .option('--interval-ms <ms>', 'how often leases are checked', (v) => Number(v), 1000);
program.parse();
const options = program.opts<{ deployment: string; intervalMs: number }>();

const log = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), msg, pid: process.pid, ...fields })}\n`,
  );

const planFile = join(deploymentsHome(), options.deployment, 'plan.json');
// After a heal that failed, the next round waits longer: the log would drown in retries otherwise.
const RETRY_MS = 5000;

log('watching', { deployment: options.deployment, intervalMs: options.intervalMs });
for (;;) {
  if (!existsSync(planFile)) {
    log('run directory gone; exiting', { deployment: options.deployment });
    process.exit(0);
  }
  let pause = options.intervalMs;
  try {
    // Opened afresh every round, so processes started elsewhere meanwhile are adopted, not doubled.
    const deployment = await Deployment.open(options.deployment);
    if (activeLeases(deployment).some((l) => l.expired))
      for (const result of await healLapsedFaults(deployment)) {
        log(result.healed ? 'healed a fault whose lease lapsed' : 'healing failed; trying again', result);
        if (!result.healed) pause = RETRY_MS;
      }
  } catch (error) {
    log('watchdog round failed', { err: (error as Error).message });
    pause = RETRY_MS;
  }
  await sleep(pause);
}
