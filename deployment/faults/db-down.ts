/** db-down: the group's datastore stopped, the deployment-managed PostgreSQL and its replica if it has one. */
import { defineFault, FaultRefused } from './fault.js';
import { groupFaultSpec, groupShape, groupsOnPostgres, kindInGroup } from './fault-group.js';
import { datastoreHealthy, healDatastoreOutage, primaryDown } from './datastore-outage.js';

export const dbDown = defineFault({
  kind: 'db-down',
  spec: groupFaultSpec('db-down'),
  describe: kindInGroup,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    const store = deployment.topology.upstream.datastore;
    const groups = groupsOnPostgres(deployment);
    if (store !== 'managed' || !groups.includes(g.name))
      throw new FaultRefused(
        `db-down stops the deployment's own PostgreSQL, which needs upstream.datastore: managed; this deployment's datastore is ${
          store === 'embedded'
            ? 'embedded (PGlite inside each server process)'
            : 'a PostgreSQL it does not run'
        }`,
      );
    return {
      targets: [
        `PostgreSQL 127.0.0.1:${deployment.plan.postgres!.port} (the datastore of ${groups.join(', ')})`,
      ],
      effect: 'issuance',
      groups,
    };
  },
  async inject(deployment) {
    const postgres = deployment.postgres()!;
    const replica = deployment.replica();
    // A crash, not a polite shutdown: the next start runs PostgreSQL's crash recovery.
    await replica?.stop('immediate');
    await postgres.stop('immediate');
    return `PostgreSQL on 127.0.0.1:${postgres.port} stopped (immediate)${replica ? ', and its replica' : ''}`;
  },
  async confirm(deployment, _spec, seen) {
    await primaryDown(deployment, seen);
    const replica = deployment.replica();
    if (replica) await seen.portDown('the PostgreSQL replica', replica.port);
  },
  heal: (deployment, _spec, run) => healDatastoreOutage(deployment, run.restored),
  verify: (deployment, _spec, seen) => datastoreHealthy(deployment, seen),
});
