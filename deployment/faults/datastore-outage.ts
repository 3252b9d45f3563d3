/**
 * What the datastore faults (db-down, db-primary-down, db-restore) share: seeing the managed
 * PostgreSQL stopped, starting it again with every group on it, and seeing it whole.
 */
import type { Deployment } from '../deployment.js';
import type { Observations } from './fault.js';
import { groupsOnPostgres } from './fault-group.js';
import { groupHealthy, restoreGroup } from './group-recovery.js';

/** Whether the primary is down: no postmaster, no answer, no listener. */
export async function primaryDown(deployment: Deployment, seen: Observations): Promise<void> {
  const postgres = deployment.postgres()!;
  const pid = postgres.pid();
  if (pid !== undefined) seen.problems.push(`PostgreSQL still runs (pid ${pid})`);
  if (await postgres.isUp()) seen.problems.push('PostgreSQL still answers queries');
  await seen.portDown('PostgreSQL', postgres.port);
}

/**
 * The primary (and its replica) running again; `restored` once the primary answers, which comes
 * well before the replica, servers and agents are checked, and is when issuance resumes.
 */
export async function healDatastoreOutage(deployment: Deployment, restored: () => void): Promise<string> {
  await deployment.postgres()!.ensureRunning();
  restored();
  await deployment.ensureDatastore();
  const groups = await restoreGroupsOnPostgres(deployment);
  return `PostgreSQL on 127.0.0.1:${deployment.postgres()!.port} running${deployment.replica() ? ' with its replica' : ''}; servers of ${groups.join(', ')} healthy`;
}

/** Every group on the managed PostgreSQL back; returns their names. */
export async function restoreGroupsOnPostgres(deployment: Deployment): Promise<string[]> {
  const groups = groupsOnPostgres(deployment);
  for (const group of groups) await restoreGroup(deployment, group);
  return groups;
}

/** The primary answering, its replica streaming, and every group on it healthy. */
export async function datastoreHealthy(deployment: Deployment, seen: Observations): Promise<void> {
  if (!(await deployment.postgres()!.isUp())) seen.problems.push('PostgreSQL does not answer');
  const replica = deployment.replica();
  if (replica && !(await replica.streaming()))
    seen.problems.push(`the replica on 127.0.0.1:${replica.port} does not stream from the primary`);
  for (const group of groupsOnPostgres(deployment)) await groupHealthy(deployment, group, seen);
}
