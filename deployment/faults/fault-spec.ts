/**
 * A fault a drill injects into a deployment: what breaks, and where. Validated with zod; the type
 * comes from the schema alone, so a scenario file, the drill workflow and deployment/faults/faults.ts agree.
 */
import { z } from 'zod';
import { durationSeconds as seconds } from '../topology/duration-schema.js';

/** A server group: the upstream cluster, or a downstream by its topology name. */
const group = z
  .string({ error: 'expected a group: "upstream" or a downstream name' })
  .regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'expected a group: "upstream" or a downstream name' });

export const faultSpecSchema = z.discriminatedUnion(
  'kind',
  [
    /** The group's datastore stopped: the deployment-managed PostgreSQL, and its replica if it has one. */
    z.strictObject({ kind: z.literal('db-down'), group }),
    /**
     * The managed PostgreSQL's primary stopped while its read replica (`readReplica`) runs on: the
     * servers' entry caches reload from the replica, everything else needs the primary.
     */
    z.strictObject({ kind: z.literal('db-primary-down'), group }),
    /**
     * The datastore lost and restored from a backup taken `backupAge` seconds before the loss;
     * `registerAfterBackup` workloads of the group get one more identity between backup and loss,
     * which the restore must take away again.
     */
    z.strictObject({
      kind: z.literal('db-restore'),
      group,
      backupAge: seconds,
      registerAfterBackup: z
        .number({ error: 'expected how many workloads get an identity after the backup' })
        .int({ error: 'expected a whole number of workloads' })
        .min(0, { error: 'cannot be negative' })
        .default(1),
    }),
    /** The lowest-numbered `count` servers of the group stopped; fewer than all keeps issuance up. */
    z.strictObject({
      kind: z.literal('servers-down'),
      group,
      count: z
        .number({ error: 'expected how many servers to stop' })
        .int({ error: 'expected a whole number of servers' })
        .min(1, { error: 'stop at least one server' }),
    }),
    /** The group's load balancer stopped. */
    z.strictObject({ kind: z.literal('lb-down'), group }),
    /** Every server of the group stopped, and its balancer. */
    z.strictObject({ kind: z.literal('server-loss'), group }),
    /** One agent of the group stopped after it attested; `agent` is its index (agent-0, agent-1…). */
    z.strictObject({
      kind: z.literal('agent-down'),
      group,
      agent: z
        .number({ error: 'expected the agent index (0 for agent-0)' })
        .int({ error: 'expected a whole agent index' })
        .min(0, { error: 'agent indexes start at 0' }),
    }),
    /** The downstream's relay to its upstream stopped: its servers and upstream agent cannot reach it. */
    z.strictObject({
      kind: z.literal('upstream-outage'),
      downstream: group.refine((name) => name !== 'upstream', {
        error: 'upstream-outage cuts a downstream off its upstream: name a downstream',
      }),
    }),
    /**
     * The group's active X.509 authority declared compromised: a new one is prepared and activated and
     * the old one tainted; healing revokes it.
     */
    z.strictObject({ kind: z.literal('ca-compromise'), group }),
  ],
  {
    error:
      'unknown fault kind: use db-down, db-primary-down, db-restore, servers-down, lb-down, server-loss, agent-down, upstream-outage or ca-compromise',
  },
);

export type FaultSpec = z.output<typeof faultSpecSchema>;
export type FaultKind = FaultSpec['kind'];

/** The fault in a few words, for logs and records. */
export function describeFault(spec: FaultSpec): string {
  switch (spec.kind) {
    case 'servers-down':
      return `servers-down (${spec.count} of ${spec.group}'s servers)`;
    case 'agent-down':
      return `agent-down (${spec.group} agent-${spec.agent})`;
    case 'upstream-outage':
      return `upstream-outage (${spec.downstream} cut off)`;
    case 'db-restore':
      return `db-restore (${spec.group}, backup ${spec.backupAge} s old)`;
    default:
      return `${spec.kind} (${spec.group})`;
  }
}
