/**
 * db-primary-down: the managed PostgreSQL's primary stopped while its read replica (`readReplica`)
 * runs on: the servers' entry caches reload from the replica, everything else needs the primary.
 */
import { defineFault, FaultRefused } from './fault.js';
import { groupFaultSpec, groupShape, groupsOnPostgres, kindInGroup } from './fault-group.js';
import { datastoreHealthy, healDatastoreOutage, primaryDown } from './datastore-outage.js';

export const dbPrimaryDown = defineFault({
  kind: 'db-primary-down',
  spec: groupFaultSpec('db-primary-down'),
  describe: kindInGroup,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    const groups = groupsOnPostgres(deployment);
    if (!groups.includes(g.name) || !deployment.plan.postgres?.replica)
      throw new FaultRefused(
        "db-primary-down stops the primary of the deployment's own PostgreSQL under its read replica, which needs upstream.datastore: managed and upstream.readReplica: true",
      );
    return {
      targets: [
        `PostgreSQL primary 127.0.0.1:${deployment.plan.postgres.port} (the datastore of ${groups.join(', ')}; the replica on 127.0.0.1:${deployment.plan.postgres.replica.port} stays up)`,
      ],
      // As in SPIRE, only the entry cache reads the replica: agent authorization needs the primary.
      effect: 'issuance',
      groups,
    };
  },
  async inject(deployment) {
    const postgres = deployment.postgres()!;
    await postgres.stop('immediate');
    return `PostgreSQL primary on 127.0.0.1:${postgres.port} stopped (immediate); the replica runs on`;
  },
  async confirm(deployment, _spec, seen) {
    await primaryDown(deployment, seen);
    const replica = deployment.replica();
    if (!replica) return;
    if (await replica.instance.isUp()) seen.seen.push('the replica answers queries');
    else
      seen.problems.push(
        `the replica on 127.0.0.1:${replica.port} does not answer: that is db-down, not db-primary-down`,
      );
  },
  heal: (deployment, _spec, run) => healDatastoreOutage(deployment, run.restored),
  verify: (deployment, _spec, seen) => datastoreHealthy(deployment, seen),
});
