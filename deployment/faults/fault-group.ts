/**
 * The server group a fault lands on, as faults see it: its name in a scenario file, its ports and
 * parts in this deployment, and which groups keep their databases in the deployment's PostgreSQL.
 */
import { z } from 'zod';
import type { Deployment } from '../deployment.js';
import { FaultRefused } from './fault.js';

/** A server group: the upstream cluster, or a downstream by its topology name. */
export const groupName = z
  .string({ error: 'expected a group: "upstream" or a downstream name' })
  .regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'expected a group: "upstream" or a downstream name' });

/** The spec of a kind whose only target is a group. */
export const groupFaultSpec = <Kind extends string>(kind: Kind) =>
  z.strictObject({ kind: z.literal(kind), group: groupName });

/** The fault in a few words: its kind and group. */
export const kindInGroup = (spec: { kind: string; group: string }) => `${spec.kind} (${spec.group})`;

export interface GroupShape {
  name: string;
  serverPorts: number[];
  /** Where agents dial: the balancer's port, or the first server's. */
  agentFacing: number;
  balancer: boolean;
  agents: number;
}

/** The group in this deployment's plan; refused, naming the groups there are, when it has none such. */
export function groupShape(deployment: Deployment, name: string): GroupShape {
  const { plan, topology } = deployment;
  if (name === 'upstream')
    return {
      name,
      serverPorts: plan.upstream.servers,
      agentFacing: plan.upstream.agentFacing,
      balancer: topology.upstream.loadBalancer,
      agents: topology.upstream.agents,
    };
  const downstream = topology.downstreams.find((d) => d.name === name);
  const ports = plan.downstreams[name];
  if (!downstream || !ports)
    throw new FaultRefused(
      `deployment ${deployment.id} has no group "${name}": its groups are ${['upstream', ...topology.downstreams.map((d) => d.name)].join(', ')}`,
    );
  return {
    name,
    serverPorts: ports.servers,
    agentFacing: ports.agentFacing,
    balancer: false,
    agents: downstream.agents,
  };
}

export const serverTarget = (g: GroupShape, i: number) =>
  `${g.name} server ${i} (127.0.0.1:${g.serverPorts[i]})`;
export const balancerTarget = (g: GroupShape) => `${g.name} load balancer (127.0.0.1:${g.agentFacing})`;

/** Groups whose databases live in the deployment's own PostgreSQL, with their connection strings. */
export function databasesOnPostgres(deployment: Deployment): { group: string; url: string }[] {
  const port = deployment.plan.postgres?.port;
  if (port === undefined) return [];
  const all = [
    { group: 'upstream', database: deployment.plan.upstream.database },
    ...Object.entries(deployment.plan.downstreams).map(([group, d]) => ({ group, database: d.database })),
  ];
  return all.flatMap(({ group, database }) =>
    database.type === 'postgres' && new URL(database.connectionString).port === String(port)
      ? [{ group, url: database.connectionString }]
      : [],
  );
}

export const groupsOnPostgres = (deployment: Deployment): string[] =>
  databasesOnPostgres(deployment).map((d) => d.group);
