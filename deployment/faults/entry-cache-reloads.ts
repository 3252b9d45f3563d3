/**
 * How often each server of the groups on the managed PostgreSQL failed to reload its entry cache
 * while a datastore fault held, read from the servers' logs.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Deployment } from '../deployment.js';
import { databasesOnPostgres } from './fault-group.js';

/**
 * How often each server of the groups on the managed PostgreSQL failed to reload its entry cache
 * within `window`, from the servers' logs: with a read replica a lost primary costs none.
 */
export async function entryCacheReloadFailures(
  deployment: Deployment,
  window: { start: number; end: number },
): Promise<{ server: string; failures: number }[]> {
  const counts: { server: string; failures: number }[] = [];
  for (const { group } of databasesOnPostgres(deployment)) {
    const stack = await deployment.stack(group);
    stack.serverPorts.forEach((_, i) => {
      const log = stack.serverLogPath(i);
      let failures = 0;
      for (const line of existsSync(log) ? readFileSync(log, 'utf8').split('\n') : []) {
        const time = stack.implementation.entryCacheReloadFailedAt(line);
        if (time !== undefined && time >= window.start && time <= window.end) failures++;
      }
      counts.push({ server: `${group} server ${i}`, failures });
    });
  }
  return counts;
}
