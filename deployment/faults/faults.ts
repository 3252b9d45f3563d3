/**
 * Faults a drill injects into a deployment, and their healing: what each kind targets, doing it
 * (idempotently, under a lease), seeing from outside that it took, undoing it, and seeing that the
 * deployment is whole again. Knows nothing of Temporal: the drill activities wrap these.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { Deployment } from '../deployment.js';
import {
  bundlesClean,
  compromiseAuthorities,
  compromiseSeen,
  revokeCompromised,
} from './fault-ca-compromise.js';
import {
  listLeases,
  readHealed,
  readLease,
  removeLease,
  withFaultLock,
  writeHealed,
  writeLease,
  type FaultLease,
  type HealedRecord,
} from '../lease/fault-lease.js';
import { datastoreLost, loseForRestore, restoreFromBackup } from './fault-datastore.js';
import { describeFault, type FaultSpec } from './fault-spec.js';
import { ensureWatchdog } from '../lease/fault-watchdog.js';
import { portAcceptsConnections } from '../host/free-port.js';
import type { IdentityStack } from '../stack/identity-stack.js';
import type { ManagedProcess } from '../host/managed-process.js';

/** The topology cannot host this fault; the message says why. */
export class FaultRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FaultRefused';
  }
}

/**
 * What the TTL model must assume while the fault holds, for the workloads of the fault's `groups`:
 * 'issuance' when they can get no new SVID; 'none' when issuance goes on (a downstream cut off from
 * its upstream signs on with its intermediate, whose NotAfter then caps its SVIDs); 'authority' when
 * issuance goes on from a new authority.
 */
export type FaultEffect = 'issuance' | 'none' | 'authority';

export interface FaultResolution {
  /** What the fault stops or changes, in words an operator recognizes. */
  targets: string[];
  effect: FaultEffect;
  /**
   * The server groups whose workloads `effect` applies to: the fault's group, or every group whose
   * database lives in a stopped PostgreSQL. For agent-down, only that agent's workloads.
   */
  groups: string[];
}

interface GroupShape {
  name: string;
  serverPorts: number[];
  /** Where agents dial: the balancer's port, or the first server's. */
  agentFacing: number;
  balancer: boolean;
  agents: number;
}

function groupShape(deployment: Deployment, name: string): GroupShape {
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

const serverTarget = (g: GroupShape, i: number) => `${g.name} server ${i} (127.0.0.1:${g.serverPorts[i]})`;
const balancerTarget = (g: GroupShape) => `${g.name} load balancer (127.0.0.1:${g.agentFacing})`;

/** Groups whose servers keep their databases in the deployment's own PostgreSQL. */
function groupsOnPostgres(deployment: Deployment): string[] {
  const port = deployment.plan.postgres?.port;
  if (port === undefined) return [];
  const onIt = (database: { type: string; connectionString?: string }) =>
    database.type === 'postgres' && new URL(database.connectionString!).port === String(port);
  return [
    ...(onIt(deployment.plan.upstream.database) ? ['upstream'] : []),
    ...Object.entries(deployment.plan.downstreams)
      .filter(([, d]) => onIt(d.database))
      .map(([name]) => name),
  ];
}

/** Where the fault lands and what it does to issuance; refuses what the topology cannot host. */
export function resolveFault(deployment: Deployment, spec: FaultSpec): FaultResolution {
  switch (spec.kind) {
    case 'db-down': {
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
    }
    case 'db-primary-down': {
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
    }
    case 'db-restore': {
      const g = groupShape(deployment, spec.group);
      const groups = groupsOnPostgres(deployment);
      if (!groups.includes(g.name))
        throw new FaultRefused(
          "db-restore loses the deployment's own PostgreSQL and restores a backup of it, which needs upstream.datastore: managed",
        );
      if (spec.registerAfterBackup > deployment.workloadIdentities().filter((w) => w.group === g.name).length)
        throw new FaultRefused(
          `registerAfterBackup is ${spec.registerAfterBackup}, more than ${g.name}'s workloads`,
        );
      return {
        targets: [
          `PostgreSQL 127.0.0.1:${deployment.plan.postgres!.port} (the datastore of ${groups.join(', ')}), lost and restored from a backup ${spec.backupAge} s old`,
        ],
        effect: 'issuance',
        groups,
      };
    }
    case 'servers-down': {
      const g = groupShape(deployment, spec.group);
      const n = g.serverPorts.length;
      if (spec.count > n)
        throw new FaultRefused(`${g.name} has ${n} server(s): ${spec.count} cannot be stopped`);
      if (spec.count === n)
        throw new FaultRefused(
          `stopping all ${n} of ${g.name}'s servers is a server-loss: use kind server-loss (servers-down leaves at least one up)`,
        );
      return {
        targets: Array.from({ length: spec.count }, (_, i) => serverTarget(g, i)),
        // Without a balancer every agent dials the first server, which is among the stopped ones.
        effect: g.balancer ? 'none' : 'issuance',
        groups: [g.name],
      };
    }
    case 'lb-down': {
      const g = groupShape(deployment, spec.group);
      if (!g.balancer)
        throw new FaultRefused(
          g.name === 'upstream'
            ? 'the upstream servers have no load balancer (upstream.loadBalancer is false)'
            : `downstream ${g.name} has no load balancer: a downstream runs one server`,
        );
      return { targets: [balancerTarget(g)], effect: 'issuance', groups: [g.name] };
    }
    case 'server-loss': {
      const g = groupShape(deployment, spec.group);
      return {
        targets: [
          ...g.serverPorts.map((_, i) => serverTarget(g, i)),
          ...(g.balancer ? [balancerTarget(g)] : []),
        ],
        effect: 'issuance',
        groups: [g.name],
      };
    }
    case 'agent-down': {
      const g = groupShape(deployment, spec.group);
      if (g.agents === 0)
        throw new FaultRefused(
          g.name === 'upstream'
            ? 'the upstream servers have no agents of their own (upstream.agents is 0)'
            : `${g.name} has no agents`,
        );
      if (spec.agent >= g.agents)
        throw new FaultRefused(
          `${g.name} has ${g.agents} agent(s), agent-0 to agent-${g.agents - 1}: there is no agent-${spec.agent}`,
        );
      return {
        targets: [`${g.name} agent-${spec.agent} (${deployment.agentNodeId(g.name, spec.agent)})`],
        effect: 'issuance',
        groups: [g.name],
      };
    }
    case 'upstream-outage': {
      const g = groupShape(deployment, spec.downstream);
      const relay = deployment.plan.downstreams[g.name]!.upstreamRelay;
      if (relay === undefined)
        throw new FaultRefused(
          `downstream ${g.name} dials its upstream directly (a deployment planned before relays existed): nothing to cut without stopping the upstream itself`,
        );
      return {
        targets: [`${g.name}'s relay to the upstream (127.0.0.1:${relay})`],
        effect: 'none',
        groups: [g.name],
      };
    }
    case 'ca-compromise': {
      const g = groupShape(deployment, spec.group);
      if (g.name !== 'upstream')
        throw new FaultRefused(
          `${g.name}'s X.509 authority is an intermediate signed by the upstream: as in SPIRE, a downstream server refuses to taint it (bundles hold only roots); compromise the root instead (group: upstream), which every downstream then rotates away from`,
        );
      const downstreams = deployment.topology.downstreams.map((d) => d.name);
      return {
        targets: g.serverPorts.map(
          (_, i) =>
            `the active X.509 authority of upstream server ${i}${downstreams.length ? ` (and the intermediates of ${downstreams.join(', ')} it signed)` : ''}`,
        ),
        effect: 'authority',
        groups: ['upstream', ...downstreams],
      };
    }
  }
}

async function stackOf(deployment: Deployment, group: string): Promise<IdentityStack> {
  const { upstream, downstreams } = await deployment.identityStacks();
  return group === 'upstream' ? upstream : downstreams[group]!;
}

/**
 * The stack's process handles as the host has them now: handles of processes that are gone are
 * dropped, and processes another worker (or the watchdog) started are adopted.
 */
function refresh(stack: IdentityStack): IdentityStack {
  const live = (p: ManagedProcess | undefined) => (p?.isRunning() ? p : undefined);
  stack.servers.forEach((p, i) => (stack.servers[i] = live(p)));
  stack.agents.forEach((p, i) => (stack.agents[i] = live(p)));
  stack.balancer = live(stack.balancer);
  stack.upstreamAgent = live(stack.upstreamAgent);
  stack.relay = live(stack.relay);
  stack.adoptRunning();
  return stack;
}

function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const sameSpec = (a: FaultSpec, b: FaultSpec) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Injects the fault for drill run `runId`, idempotently (a retry finishes what an earlier attempt
 * began). The lease is written and the watchdog started before anything is touched, so a caller that
 * dies at any point leaves a fault the watchdog heals once the lease lapses.
 */
export async function injectFault(
  deployment: Deployment,
  runId: string,
  spec: FaultSpec,
  leaseMs: number,
): Promise<string> {
  resolveFault(deployment, spec);
  const runDir = deployment.plan.runDir;
  return withFaultLock(runDir, async () => {
    const now = Date.now();
    const held = readLease(runDir, runId);
    if (held && !sameSpec(held.spec, spec))
      throw new Error(`run ${runId} already holds another fault: ${describeFault(held.spec)}`);
    const healed = readHealed(runDir, runId);
    if (!held && healed)
      throw new Error(
        `the fault of run ${runId} was healed by the ${healed.by} at ${new Date(healed.at).toISOString()} after its lease lapsed: start a new run to inject again`,
      );
    const lease: FaultLease = { spec, injectedAt: held?.injectedAt ?? now, leaseUntil: now + leaseMs };
    if (held?.authorities) lease.authorities = held.authorities;
    writeLease(runDir, runId, lease);
    await ensureWatchdog(deployment);
    return act(deployment, runId, lease);
  });
}

async function act(deployment: Deployment, runId: string, lease: FaultLease): Promise<string> {
  const spec = lease.spec;
  switch (spec.kind) {
    case 'db-down': {
      const postgres = deployment.postgres()!;
      const replica = deployment.replica();
      // A crash, not a polite shutdown: the next start runs PostgreSQL's crash recovery.
      await replica?.stop('immediate');
      await postgres.stop('immediate');
      return `PostgreSQL on 127.0.0.1:${postgres.port} stopped (immediate)${replica ? ', and its replica' : ''}`;
    }
    case 'db-primary-down': {
      const postgres = deployment.postgres()!;
      await postgres.stop('immediate');
      return `PostgreSQL primary on 127.0.0.1:${postgres.port} stopped (immediate); the replica runs on`;
    }
    case 'db-restore':
      return loseForRestore(deployment, runId);
    case 'servers-down': {
      const stack = refresh(await stackOf(deployment, spec.group));
      for (let i = 0; i < spec.count; i++) await stack.servers[i]?.stop();
      return `${spec.count} of ${stack.serverPorts.length} ${spec.group} servers stopped`;
    }
    case 'lb-down': {
      const stack = refresh(await stackOf(deployment, spec.group));
      await stack.balancer?.stop();
      return `${spec.group}'s load balancer stopped`;
    }
    case 'server-loss': {
      const stack = refresh(await stackOf(deployment, spec.group));
      await stack.balancer?.stop();
      for (const server of stack.servers) await server?.stop();
      return `every ${spec.group} server stopped${stack.options.loadBalancer ? ', and the load balancer' : ''}`;
    }
    case 'agent-down': {
      const stack = refresh(await stackOf(deployment, spec.group));
      const agent = stack.agents[spec.agent];
      // The fault is an agent that comes back with its identity: one that never attested has none.
      if (!existsSync(join(stack.agentDataDir(spec.agent), 'agent-state.json')))
        throw new Error(
          `${spec.group} agent-${spec.agent} has not attested yet: there is no agent to take down`,
        );
      await agent?.stop();
      return `${spec.group} agent-${spec.agent} stopped`;
    }
    case 'upstream-outage': {
      const stack = refresh(await stackOf(deployment, spec.downstream));
      await stack.stopRelay();
      return `${spec.downstream}'s relay to the upstream stopped`;
    }
    case 'ca-compromise':
      return compromiseAuthorities(deployment, lease.authorities, (authorities) => {
        lease.authorities = authorities;
        writeLease(deployment.plan.runDir, runId, lease);
      });
  }
}

/** Whether the fault's effect is there now, seen from outside: ports, processes, sockets, the bundle. */
export async function confirmFault(
  deployment: Deployment,
  spec: FaultSpec,
): Promise<{ injected: boolean; detail: string }> {
  const problems: string[] = [];
  const seen: string[] = [];
  const portDown = async (what: string, port: number) => {
    if (await portAcceptsConnections(port))
      problems.push(`${what} still accepts connections on 127.0.0.1:${port}`);
    else seen.push(`${what} refuses connections on 127.0.0.1:${port}`);
  };
  const processGone = (what: string, process: { isRunning(): boolean; pid: number } | undefined) => {
    if (process?.isRunning()) problems.push(`${what} still runs (pid ${process.pid})`);
  };
  switch (spec.kind) {
    case 'db-down':
    case 'db-primary-down': {
      const postgres = deployment.postgres()!;
      const pid = postgres.pid();
      if (pid !== undefined) problems.push(`PostgreSQL still runs (pid ${pid})`);
      if (await postgres.isUp()) problems.push('PostgreSQL still answers queries');
      await portDown('PostgreSQL', postgres.port);
      const replica = deployment.replica();
      if (replica && spec.kind === 'db-down') await portDown('the PostgreSQL replica', replica.port);
      if (replica && spec.kind === 'db-primary-down') {
        if (await replica.instance.isUp()) seen.push('the replica answers queries');
        else
          problems.push(
            `the replica on 127.0.0.1:${replica.port} does not answer: that is db-down, not db-primary-down`,
          );
      }
      break;
    }
    case 'db-restore': {
      const { lost, detail } = datastoreLost(deployment);
      (lost ? seen : problems).push(detail);
      await portDown('PostgreSQL', deployment.postgres()!.port);
      break;
    }
    case 'servers-down':
    case 'server-loss': {
      const stack = refresh(await stackOf(deployment, spec.group));
      const count = spec.kind === 'servers-down' ? spec.count : stack.serverPorts.length;
      for (let i = 0; i < count; i++) {
        processGone(`${spec.group} server ${i}`, stack.servers[i]);
        await portDown(`${spec.group} server ${i}`, stack.serverPorts[i]!);
      }
      if (spec.kind === 'server-loss' && stack.options.loadBalancer) {
        processGone(`${spec.group}'s load balancer`, stack.balancer);
        await portDown(`${spec.group}'s load balancer`, stack.agentFacingPort);
      }
      break;
    }
    case 'lb-down': {
      const stack = refresh(await stackOf(deployment, spec.group));
      processGone(`${spec.group}'s load balancer`, stack.balancer);
      await portDown(`${spec.group}'s load balancer`, stack.agentFacingPort);
      break;
    }
    case 'agent-down': {
      const stack = refresh(await stackOf(deployment, spec.group));
      const what = `${spec.group} agent-${spec.agent}`;
      processGone(what, stack.agents[spec.agent]);
      const socket = stack.agentSockets[spec.agent]!;
      if (await socketAccepts(socket))
        problems.push(`${what}'s Workload API socket ${socket} still accepts connections`);
      else seen.push(`${what}'s Workload API is gone`);
      break;
    }
    case 'upstream-outage': {
      const stack = refresh(await stackOf(deployment, spec.downstream));
      processGone(`${spec.downstream}'s upstream relay`, stack.relay);
      await portDown(`${spec.downstream}'s upstream relay`, stack.relayPort!);
      break;
    }
    case 'ca-compromise': {
      const { seen: compromised, detail } = await compromiseSeen(deployment);
      (compromised ? seen : problems).push(detail);
      break;
    }
  }
  return problems.length > 0
    ? { injected: false, detail: problems.join('; ') }
    : { injected: true, detail: seen.join('; ') || describeFault(spec) };
}

/** Extends the lease of run `runId`'s fault; refused once the lease has lapsed (the fault is the watchdog's then). */
export function renewLease(
  deployment: Deployment,
  runId: string,
  leaseMs: number,
): Promise<{ leaseUntil: number }> {
  const runDir = deployment.plan.runDir;
  return withFaultLock(runDir, async () => {
    const lease = readLease(runDir, runId);
    const now = Date.now();
    if (!lease) {
      const healed = readHealed(runDir, runId);
      throw new Error(
        healed
          ? `the fault of run ${runId} is gone: the ${healed.by} healed it at ${new Date(healed.at).toISOString()} after its lease lapsed`
          : `run ${runId} holds no fault on deployment ${deployment.id}`,
      );
    }
    if (lease.leaseUntil < now)
      throw new Error(
        `the lease of run ${runId}'s fault lapsed at ${new Date(lease.leaseUntil).toISOString()}: the watchdog heals it`,
      );
    lease.leaseUntil = now + leaseMs;
    writeLease(runDir, runId, lease);
    return { leaseUntil: lease.leaseUntil };
  });
}

export interface ActiveLease extends FaultLease {
  runId: string;
  expired: boolean;
}

/** Every fault the deployment holds, with its lease. */
export function activeLeases(deployment: Deployment): ActiveLease[] {
  const now = Date.now();
  return listLeases(deployment.plan.runDir).map(({ runId, lease }) => ({
    runId,
    ...lease,
    expired: lease.leaseUntil < now,
  }));
}

/** Who healed run `runId`'s fault when its lease lapsed, if the watchdog did. */
export function healedBy(deployment: Deployment, runId: string): HealedRecord | undefined {
  return readHealed(deployment.plan.runDir, runId);
}

/**
 * Undoes run `runId`'s fault, idempotently: safe after a partial injection, and a no-op once healed.
 * Restores with the stacks' ensure-methods, which start only what is not running; the lease goes last.
 */
export interface Healed {
  detail: string;
  /** When the fault's cause was gone: issuance resumes from here, often before healing has finished. */
  restoredAt: number;
}

export function healFault(deployment: Deployment, runId: string, spec: FaultSpec): Promise<Healed> {
  const runDir = deployment.plan.runDir;
  return withFaultLock(runDir, async () => {
    const lease = readLease(runDir, runId);
    if (lease && !sameSpec(lease.spec, spec))
      throw new Error(`run ${runId} holds another fault: ${describeFault(lease.spec)}`);
    let restoredAt: number | undefined;
    const detail = await heal(deployment, runId, spec, lease, () => (restoredAt ??= Date.now()));
    removeLease(runDir, runId);
    return { detail, restoredAt: restoredAt ?? Date.now() };
  });
}

/** Agents of `group` running again, re-attesting those whose saved SVID expired while they were down. */
async function ensureAgentsOf(deployment: Deployment, group: string): Promise<void> {
  const stack = refresh(await stackOf(deployment, group));
  for (let i = 0; i < stack.agentSockets.length; i++)
    await stack.ensureAgent(i, deployment.agentNodeId(group, i));
}

/** Servers of `group` (and its balancer) running and healthy, then its agents. */
async function restoreGroup(deployment: Deployment, group: string): Promise<void> {
  const stack = refresh(await stackOf(deployment, group));
  await stack.ensureServers();
  await ensureAgentsOf(deployment, group);
  // A downstream's upstream agent exits if its own SVID expires while its upstream is unreachable.
  if (group === 'upstream')
    for (const name of Object.keys(deployment.plan.downstreams)) {
      const downstream = refresh(await stackOf(deployment, name));
      if (!downstream.upstreamAgent?.isRunning()) await downstream.ensureDownstream();
    }
}

/**
 * Undoes the fault; `restored` is called once its cause is gone (the primary answering again), which
 * for a datastore comes well before the replica, servers and agents are checked, and is when the
 * deployment's issuance resumes. Kinds that do not call it are restored when healing ends.
 */
async function heal(
  deployment: Deployment,
  runId: string,
  spec: FaultSpec,
  lease: FaultLease | undefined,
  restored: () => void,
): Promise<string> {
  switch (spec.kind) {
    case 'db-down':
    case 'db-primary-down': {
      await deployment.postgres()!.ensureRunning();
      restored();
      await deployment.ensureDatastore();
      const groups = groupsOnPostgres(deployment);
      for (const group of groups) await restoreGroup(deployment, group);
      return `PostgreSQL on 127.0.0.1:${deployment.postgres()!.port} running${deployment.replica() ? ' with its replica' : ''}; servers of ${groups.join(', ')} healthy`;
    }
    case 'db-restore': {
      const done = await restoreFromBackup(deployment, runId, restored);
      const groups = groupsOnPostgres(deployment);
      for (const group of groups) await restoreGroup(deployment, group);
      return `${done.join('; ')}; servers of ${groups.join(', ')} healthy`;
    }
    case 'servers-down':
    case 'server-loss':
    case 'lb-down':
      await restoreGroup(deployment, spec.group);
      return `${spec.group}'s servers${deployment.topology.upstream.loadBalancer && spec.group === 'upstream' ? ' and load balancer' : ''} running and healthy`;
    case 'agent-down': {
      const stack = refresh(await stackOf(deployment, spec.group));
      await stack.ensureAgent(spec.agent, deployment.agentNodeId(spec.group, spec.agent));
      return `${spec.group} agent-${spec.agent} running`;
    }
    case 'upstream-outage': {
      const stack = refresh(await stackOf(deployment, spec.downstream));
      await stack.ensureRelay();
      if (!stack.upstreamAgent?.isRunning()) await stack.ensureDownstream();
      return `${spec.downstream}'s relay to the upstream running`;
    }
    case 'ca-compromise':
      return revokeCompromised(deployment, lease?.authorities);
  }
}

/** Whether the deployment is whole again where the fault was: processes healthy, ports open, bundles clean. */
export async function verifyHealed(
  deployment: Deployment,
  spec: FaultSpec,
): Promise<{ healed: boolean; detail: string }> {
  const problems: string[] = [];
  const seen: string[] = [];
  const serversHealthy = async (group: string) => {
    const stack = refresh(await stackOf(deployment, group));
    for (let i = 0; i < stack.serverPorts.length; i++) {
      if (!stack.servers[i]?.isRunning()) problems.push(`${group} server ${i} is not running`);
      // `agent list` reads the datastore, so it also proves the server reaches its database.
      else if ((await stack.serverCli(['agent', 'list'], i)).code !== 0)
        problems.push(`${group} server ${i} does not answer from its datastore`);
    }
    if (stack.options.loadBalancer) {
      if (!stack.balancer?.isRunning()) problems.push(`${group}'s load balancer is not running`);
      else if (!(await portAcceptsConnections(stack.agentFacingPort)))
        problems.push(`${group}'s load balancer refuses connections on 127.0.0.1:${stack.agentFacingPort}`);
    }
    for (let i = 0; i < stack.agentSockets.length; i++)
      if (!stack.agents[i]?.isRunning()) problems.push(`${group} agent-${i} is not running`);
    if (problems.length === 0) seen.push(`${group} healthy`);
  };
  switch (spec.kind) {
    case 'db-down':
    case 'db-primary-down':
    case 'db-restore': {
      if (!(await deployment.postgres()!.isUp())) problems.push('PostgreSQL does not answer');
      const replica = deployment.replica();
      if (replica && !(await replica.streaming()))
        problems.push(`the replica on 127.0.0.1:${replica.port} does not stream from the primary`);
      for (const group of groupsOnPostgres(deployment)) await serversHealthy(group);
      break;
    }
    case 'servers-down':
    case 'server-loss':
    case 'lb-down':
      await serversHealthy(spec.group);
      break;
    case 'agent-down': {
      const stack = refresh(await stackOf(deployment, spec.group));
      const what = `${spec.group} agent-${spec.agent}`;
      if (!stack.agents[spec.agent]?.isRunning()) problems.push(`${what} is not running`);
      else if ((await stack.agentCli(['healthcheck'], spec.agent)).code !== 0)
        problems.push(`${what} fails its healthcheck`);
      else seen.push(`${what} healthy`);
      break;
    }
    case 'upstream-outage': {
      const stack = refresh(await stackOf(deployment, spec.downstream));
      if (!stack.relay?.isRunning()) problems.push(`${spec.downstream}'s upstream relay is not running`);
      else if (!(await portAcceptsConnections(stack.relayPort!)))
        problems.push(
          `${spec.downstream}'s upstream relay refuses connections on 127.0.0.1:${stack.relayPort}`,
        );
      if (!stack.upstreamAgent?.isRunning())
        problems.push(`${spec.downstream}'s upstream agent is not running`);
      if (problems.length === 0) seen.push(`${spec.downstream} reaches its upstream again`);
      break;
    }
    case 'ca-compromise': {
      const { clean, detail } = await bundlesClean(deployment);
      (clean ? seen : problems).push(detail);
      break;
    }
  }
  return problems.length > 0
    ? { healed: false, detail: problems.join('; ') }
    : { healed: true, detail: seen.join('; ') };
}

/**
 * The watchdog's round: heals every fault whose lease has lapsed and records that it did. A fault
 * renewed meanwhile (the lease is read again under the lock) is left alone.
 */
export async function healLapsedFaults(
  deployment: Deployment,
): Promise<{ runId: string; healed: boolean; detail: string }[]> {
  const runDir = deployment.plan.runDir;
  const results: { runId: string; healed: boolean; detail: string }[] = [];
  for (const { runId } of activeLeases(deployment).filter((l) => l.expired)) {
    try {
      const outcome = await withFaultLock(runDir, async () => {
        const lease = readLease(runDir, runId);
        if (!lease || lease.leaseUntil >= Date.now()) return undefined;
        let restoredAt: number | undefined;
        const detail = await heal(deployment, runId, lease.spec, lease, () => (restoredAt ??= Date.now()));
        // Recorded before the lease goes: a crash in between means healing again, never a silent loss.
        writeHealed(runDir, runId, { by: 'watchdog', at: restoredAt ?? Date.now(), detail });
        removeLease(runDir, runId);
        return detail;
      });
      if (outcome !== undefined) results.push({ runId, healed: true, detail: outcome });
    } catch (error) {
      results.push({ runId, healed: false, detail: (error as Error).message });
    }
  }
  return results;
}
