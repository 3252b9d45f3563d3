import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import type { DatabaseChoice } from './implementation/spire-configs.js';
import { IdentityStack } from './stack/identity-stack.js';
import { spireKnobChoices } from './spire-knob-choices.js';
import type { ImplementationName, SpireImplementation } from './implementation/implementation.js';
import { implementationFor } from './implementation/implementation-for.js';
import { ImplementationUnavailable } from './implementation/implementation-unavailable.js';
import { freePort, portAcceptsConnections } from './host/free-port.js';
import { findProcess } from './host/managed-process.js';
import { packageRoot } from './host/package-root.js';
import { stopProbes } from './probes/probe-fleet.js';
import { findPostgresBinDir, PostgresInstance } from './postgres/postgres-instance.js';
import { PostgresReplica } from './postgres/postgres-replica.js';
import type { Topology } from './topology/topology.js';
import type { WorkloadSlot } from './workload-slot.js';
import { workloadIdentity } from './workload-identity.js';

/**
 * One deployment under test on this host, rebuilt the same by any worker from its run directory:
 * `plan.json` fixes the topology, the ports and the databases on first use, so later calls (a retried
 * activity, a new worker after a crash) find the same processes instead of starting twins.
 */
export interface DeploymentPlan {
  id: string;
  topology: Topology;
  runDir: string;
  upstream: { servers: number[]; agentFacing: number; database: DatabaseChoice };
  downstreams: Record<
    string,
    {
      servers: number[];
      agentFacing: number;
      database: DatabaseChoice;
      /**
       * The port of the relay this downstream dials to reach its upstream (stopped for an upstream
       * outage); absent in plans made before relays, whose downstreams dial the upstream directly.
       */
      upstreamRelay?: number;
    }
  >;
  /** PostgreSQL databases this deployment created, dropped at teardown. */
  createdDatabases: { adminUrl: string; name: string }[];
  /**
   * `datastore: managed`: the deployment's own PostgreSQL and its databases; its data lives in
   * `<runDir>/postgres`, or in `dir` when the run directory is out of the postgres user's reach.
   */
  postgres?: {
    port: number;
    databases: string[];
    dir?: string;
    /** `readReplica`: its streaming standby, in `<dir>/../postgres-replica` or `replica.dir`. */
    replica?: { port: number; dir?: string };
  };
}

const ID = /^[a-z0-9][a-z0-9-]{0,40}$/;

/** Where run directories live: SPIRE_DRILL_HOME, or `.run/deployments` in the repository. */
export function deploymentsHome(): string {
  return resolve(process.env.SPIRE_DRILL_HOME ?? join(packageRoot(), '.run', 'deployments'));
}

export function validateDeploymentId(id: string): string {
  if (!ID.test(id))
    throw new Error(
      `invalid deployment id "${id}": lowercase letters, digits and dashes, at most 41 characters`,
    );
  return id;
}

async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Whether every directory above `dir` lets other users through: PostgreSQL runs as its own user and
 * cannot reach a data directory under, say, a 0700 home directory.
 */
function reachableByOthers(dir: string): boolean {
  for (let d = dirname(resolve(dir)); ; d = dirname(d)) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return false;
    } catch {
      // not created yet: created by us with the default mode
    }
    if (d === dirname(d)) return true;
  }
}

/** The directory of server group `group` in the run directory; its managed database is named alike. */
function groupDirName(group: string): string {
  return group === 'upstream' ? 'upstream' : `down-${group}`;
}

/** The SPIRE server group `group` runs; a plan written before groups had their own names only the topology's. */
function groupImplementation(t: Topology, group: string): ImplementationName {
  const own =
    group === 'upstream'
      ? t.upstream.implementation
      : t.downstreams.find((d) => d.name === group)?.implementation;
  return (own as ImplementationName | undefined) ?? t.implementation;
}

/** Every server group's name, the upstream's first. */
function groupNames(t: Topology): string[] {
  return ['upstream', ...t.downstreams.map((d) => d.name)];
}

export class Deployment {
  private stacks: { upstream: IdentityStack; downstreams: Record<string, IdentityStack> } | undefined;
  private postgresInstance: PostgresInstance | undefined;
  private postgresReplica: PostgresReplica | undefined;

  private constructor(readonly plan: DeploymentPlan) {}

  /** Opens the deployment's plan, creating it (ports, databases, run directory) when `topology` is given and none exists. */
  static async open(id: string, topology?: Topology): Promise<Deployment> {
    validateDeploymentId(id);
    const runDir = join(deploymentsHome(), id);
    const planFile = join(runDir, 'plan.json');
    if (existsSync(planFile))
      return new Deployment(JSON.parse(readFileSync(planFile, 'utf8')) as DeploymentPlan);
    if (!topology) throw new Error(`deployment "${id}" does not exist (no ${planFile})`);
    const store = topology.upstream.datastore;
    // Refused before anything is made, with the reason, when this host cannot run one.
    if (store === 'managed') await findPostgresBinDir();
    for (const group of groupNames(topology)) {
      const implementation = implementationFor(groupImplementation(topology, group));
      const type = store === 'embedded' ? implementation.embeddedDatabase(runDir).type : 'postgres';
      const reason = implementation.unavailable(type);
      if (reason) throw new ImplementationUnavailable(group, reason);
    }
    mkdirSync(runDir, { recursive: true });
    const createdDatabases: DeploymentPlan['createdDatabases'] = [];
    const managed: DeploymentPlan['postgres'] =
      store === 'managed'
        ? {
            port: await freePort(),
            databases: [] as string[],
            ...(reachableByOthers(runDir)
              ? {}
              : { dir: mkdtempSync(join(tmpdir(), `spire-drill-pg-${id}-`)) }),
          }
        : undefined;
    if (managed && topology.upstream.readReplica)
      managed.replica = {
        port: await freePort(),
        ...(managed.dir ? { dir: mkdtempSync(join(tmpdir(), `spire-drill-pgr-${id}-`)) } : {}),
      };
    const database = async (group: string): Promise<DatabaseChoice> => {
      const dir = groupDirName(group);
      if (store === 'embedded')
        return implementationFor(groupImplementation(topology, group)).embeddedDatabase(join(runDir, dir));
      if (store === 'managed') {
        // The instance is the deployment's own: its databases go with its data directory.
        const name = dir.replace(/-/g, '_');
        managed!.databases.push(name);
        return {
          type: 'postgres',
          connectionString: `postgres://postgres@127.0.0.1:${managed!.port}/${name}`,
          ...(managed!.replica
            ? { roConnectionString: `postgres://postgres@127.0.0.1:${managed!.replica.port}/${name}` }
            : {}),
        };
      }
      const name = `spire_drill_${id.replace(/-/g, '_')}_${dir.replace(/-/g, '_')}`;
      const connectionString = await createDatabase(store.postgres, name);
      createdDatabases.push({ adminUrl: store.postgres, name });
      return { type: 'postgres', connectionString };
    };
    const ports = async (servers: number, balancer: boolean) => {
      const list = await Promise.all(Array.from({ length: servers }, () => freePort()));
      return { servers: list, agentFacing: balancer ? await freePort() : list[0]! };
    };
    const upstream = {
      ...(await ports(topology.upstream.servers, topology.upstream.loadBalancer)),
      database: await database('upstream'),
    };
    const downstreams: DeploymentPlan['downstreams'] = {};
    for (const d of topology.downstreams)
      downstreams[d.name] = {
        ...(await ports(1, false)),
        database: await database(d.name),
        upstreamRelay: await freePort(),
      };
    const plan: DeploymentPlan = {
      id,
      topology,
      runDir,
      upstream,
      downstreams,
      createdDatabases,
      ...(managed ? { postgres: managed } : {}),
    };
    writeFileSync(`${planFile}.tmp`, JSON.stringify(plan, null, 2));
    writeFileSync(planFile, readFileSync(`${planFile}.tmp`));
    rmSync(`${planFile}.tmp`);
    return new Deployment(plan);
  }

  /**
   * A deployment of `topology` as it would be planned, for dry runs: nothing is created, and every
   * port is 0 (chosen at spin-up).
   */
  static preview(topology: Topology): Deployment {
    const store = topology.upstream.datastore;
    const database = (group: string): DatabaseChoice =>
      store === 'embedded'
        ? implementationFor(groupImplementation(topology, group)).embeddedDatabase(
            join('(run directory)', groupDirName(group)),
          )
        : {
            type: 'postgres',
            connectionString: `postgres://postgres@127.0.0.1:0/${groupDirName(group).replace(/-/g, '_')}`,
          };
    const downstreams: DeploymentPlan['downstreams'] = {};
    for (const d of topology.downstreams)
      downstreams[d.name] = {
        servers: [0],
        agentFacing: 0,
        database: database(d.name),
        upstreamRelay: 0,
      };
    return new Deployment({
      id: 'preview',
      topology,
      runDir: '(run directory)',
      upstream: {
        servers: Array.from({ length: topology.upstream.servers }, () => 0),
        agentFacing: 0,
        database: database('upstream'),
      },
      downstreams,
      createdDatabases: [],
      ...(store === 'managed'
        ? {
            postgres: {
              port: 0,
              databases: ['upstream', ...topology.downstreams.map((d) => `down_${d.name}`)],
              // A plan without it would refuse db-primary-down, which `drill run` accepts.
              ...(topology.upstream.readReplica ? { replica: { port: 0 } } : {}),
            },
          }
        : {}),
    });
  }

  static list(): string[] {
    const home = deploymentsHome();
    if (!existsSync(home)) return [];
    return readdirSync(home).filter((id) => existsSync(join(home, id, 'plan.json')));
  }

  get id(): string {
    return this.plan.id;
  }

  get topology(): Topology {
    return this.plan.topology;
  }

  /**
   * The SPIRE implementation server group `group` ('upstream' or a downstream's name) runs, its
   * agents too; a downstream's upstream agent is an agent of the upstream.
   */
  implementationOf(group: string): SpireImplementation {
    return implementationFor(groupImplementation(this.plan.topology, group));
  }

  /** The stacks of this deployment, configs (re)written from the plan; processes adopted, not started. */
  async identityStacks(): Promise<{ upstream: IdentityStack; downstreams: Record<string, IdentityStack> }> {
    if (this.stacks) return this.stacks;
    const t = this.plan.topology;
    const common = {
      trustDomain: t.trustDomain,
      x509SvidTtl: `${t.ttls.x509Svid}s`,
      jwtSvidTtl: `${t.ttls.jwtSvid}s`,
      agentTtl: `${t.ttls.agentSvid}s`,
      syncInterval: `${t.syncInterval}s`,
      logLevel: 'INFO',
      ...spireKnobChoices(t.spire),
    };
    const upstreamDir = join(this.plan.runDir, groupDirName('upstream'));
    mkdirSync(upstreamDir, { recursive: true });
    const upstream = await IdentityStack.create({
      ...common,
      implementation: groupImplementation(t, 'upstream'),
      runDir: upstreamDir,
      caTtl: `${t.ttls.ca}s`,
      servers: t.upstream.servers,
      loadBalancer: t.upstream.loadBalancer,
      database: this.plan.upstream.database,
      ports: this.plan.upstream,
      agents: t.upstream.agents,
    });
    upstream.adoptRunning();
    const downstreams: Record<string, IdentityStack> = {};
    for (const d of t.downstreams) {
      const dir = join(this.plan.runDir, groupDirName(d.name));
      mkdirSync(dir, { recursive: true });
      const stack = await IdentityStack.create({
        ...common,
        implementation: groupImplementation(t, d.name),
        runDir: dir,
        caTtl: `${t.ttls.downstreamCa}s`,
        database: this.plan.downstreams[d.name]!.database,
        ports: this.plan.downstreams[d.name]!,
        agents: d.agents,
        upstream,
        relayPort: this.plan.downstreams[d.name]!.upstreamRelay,
      });
      stack.adoptRunning();
      downstreams[d.name] = stack;
    }
    this.stacks = { upstream, downstreams };
    return this.stacks;
  }

  /**
   * Every workload the topology declares, without touching the host: `workloadsPerAgent` entries
   * under each agent of the upstream servers, then of each downstream, each with its identity (see
   * workload-identity.ts), which follows from its position in that order.
   */
  workloadIdentities(): Omit<WorkloadSlot, 'socket'>[] {
    const t = this.plan.topology;
    const groups = [
      { group: 'upstream', agents: t.upstream.agents, perAgent: t.upstream.workloadsPerAgent },
      ...t.downstreams.map((d) => ({ group: d.name, agents: d.agents, perAgent: d.workloadsPerAgent })),
    ];
    const slots: Omit<WorkloadSlot, 'socket'>[] = [];
    for (const { group, agents, perAgent } of groups)
      for (let agent = 0; agent < agents; agent++)
        for (let w = 0; w < perAgent; w++)
          slots.push({
            group,
            agent,
            spiffeId: `${this.agentNodeId(group, agent)}/workload-${w}`,
            ...workloadIdentity(slots.length),
          });
    return slots;
  }

  /** The stack of server group `group` ('upstream' or a downstream's name); undefined for no such group. */
  async findStack(group: string): Promise<IdentityStack | undefined> {
    const { upstream, downstreams } = await this.identityStacks();
    return group === 'upstream' ? upstream : downstreams[group];
  }

  /** The stack of server group `group`; throws for a group the topology does not have. */
  async stack(group: string): Promise<IdentityStack> {
    const stack = await this.findStack(group);
    if (!stack) throw new Error(`deployment ${this.id} has no group "${group}"`);
    return stack;
  }

  /** Every workload the topology declares, with the Workload API socket of its agent. */
  async workloads(): Promise<WorkloadSlot[]> {
    return Promise.all(
      this.workloadIdentities().map(async (slot) => ({
        ...slot,
        socket: (await this.stack(slot.group)).agentSockets[slot.agent]!,
      })),
    );
  }

  /** The SPIFFE ID an agent of `group` ('upstream' or a downstream's name) attests as. */
  agentNodeId(group: string, agent: number): string {
    return `spiffe://${this.plan.topology.trustDomain}/${group}/agent-${agent}`;
  }

  /** The deployment's own PostgreSQL (`datastore: managed`); undefined for other datastores. */
  postgres(): PostgresInstance | undefined {
    if (!this.plan.postgres) return undefined;
    this.postgresInstance ??= new PostgresInstance({
      dir: this.plan.postgres.dir ?? join(this.plan.runDir, 'postgres'),
      port: this.plan.postgres.port,
    });
    return this.postgresInstance;
  }

  /** The managed PostgreSQL's streaming standby (`readReplica`); undefined without one. */
  replica(): PostgresReplica | undefined {
    const primary = this.postgres();
    const replica = this.plan.postgres?.replica;
    if (!primary || !replica) return undefined;
    this.postgresReplica ??= new PostgresReplica({
      primary,
      dir: replica.dir ?? join(this.plan.runDir, 'postgres-replica'),
      port: replica.port,
    });
    return this.postgresReplica;
  }

  /**
   * The managed PostgreSQL running with every server group's database, and its replica streaming
   * from it when the topology has one; nothing for other datastores.
   */
  async ensureDatastore(timeoutMs = 90_000): Promise<void> {
    const postgres = this.postgres();
    if (!postgres) return;
    await postgres.ensureRunning(timeoutMs);
    for (const name of this.plan.postgres!.databases) await postgres.createDatabase(name);
    const replica = this.replica();
    if (replica) {
      await replica.ensureRunning(timeoutMs);
      // Servers read their entry cache from it: it must hold the databases just made.
      await replica.waitCaughtUp(timeoutMs);
    }
  }

  /** Stops every process of the deployment, leaves first and the datastore last; safe to repeat. */
  async stopAll(): Promise<void> {
    // First: the fault watchdog would otherwise heal (restart) what is being stopped.
    await findProcess(this.plan.runDir, 'fault-watchdog')?.stop();
    await stopProbes(this);
    const { upstream, downstreams } = await this.identityStacks();
    for (const stack of Object.values(downstreams).reverse()) await stack.stop();
    await upstream.stop();
    await this.replica()?.stop('fast');
    await this.postgres()?.stop('fast');
  }

  /** Drops the databases the deployment created and removes its run directory. */
  async removeData(): Promise<void> {
    for (const db of this.plan.createdDatabases) {
      const client = new pg.Client({ connectionString: db.adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${db.name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    }
    if (this.plan.postgres?.dir) rmSync(this.plan.postgres.dir, { recursive: true, force: true });
    if (this.plan.postgres?.replica?.dir)
      rmSync(this.plan.postgres.replica.dir, { recursive: true, force: true });
    rmSync(this.plan.runDir, { recursive: true, force: true });
  }

  /**
   * What the deployment left behind: live processes from its pid files, sockets in its run directory,
   * and its ports still accepting connections. Empty after a clean teardown.
   */
  async leftovers(): Promise<string[]> {
    const found: string[] = [];
    const postgres = this.postgres();
    const postgresPid = postgres?.pid();
    if (postgres && postgresPid !== undefined)
      found.push(`process postgres (pid ${postgresPid}) serving ${postgres.dataDir}`);
    const standby = this.replica()?.instance;
    const standbyPid = standby?.pid();
    if (standby && standbyPid !== undefined)
      found.push(`process postgres (pid ${standbyPid}) serving the replica ${standby.dataDir}`);
    const walk = (dir: string) => {
      if (!existsSync(dir)) return;
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        // PostgreSQL's own files (postmaster.pid among them) are its business: reported above.
        if (entry.isDirectory() && (path === postgres?.dataDir || path === standby?.dataDir)) continue;
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.pid')) {
          const proc = findProcess(dir, entry.name.slice(0, -4));
          if (proc?.isRunning()) found.push(`process ${proc.name} (pid ${proc.pid}) in ${dir}`);
        } else if (entry.isSocket()) found.push(`socket ${path}`);
      }
    };
    walk(this.plan.runDir);
    const ports = [
      ...this.plan.upstream.servers,
      this.plan.upstream.agentFacing,
      ...Object.values(this.plan.downstreams).flatMap((d) => [
        ...d.servers,
        d.agentFacing,
        ...(d.upstreamRelay !== undefined ? [d.upstreamRelay] : []),
      ]),
      ...(this.plan.postgres ? [this.plan.postgres.port] : []),
      ...(this.plan.postgres?.replica ? [this.plan.postgres.replica.port] : []),
    ];
    for (const port of new Set(ports))
      if (await portAcceptsConnections(port)) found.push(`port 127.0.0.1:${port} accepts connections`);
    return found;
  }
}
