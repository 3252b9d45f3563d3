import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Context, ApplicationFailure } from '@temporalio/activity';
import { decodeProtectedHeader } from 'jose';
import { heartbeating } from './heartbeating.js';
import { agentTrust } from '../deployment/stack/agent-states.js';
import { Deployment } from '../deployment/deployment.js';
import {
  authorityState,
  authorityStep,
  bundleAuthoritiesOf,
  type AuthorityAction,
  type AuthorityKind,
  type AuthorityStates,
} from '../deployment/authority-rotation.js';
import { MissingPostgresBinaries } from '../deployment/postgres/postgres-instance.js';
import { ImplementationUnavailable } from '../deployment/implementation/implementation-unavailable.js';
import type { Topology } from '../deployment/topology/topology.js';
import type { WorkloadSlot } from '../deployment/workload-slot.js';
import { x509AuthorityId } from '../identity-core/spiffe/trust-bundle.js';
import { verifyingRoots } from '../deployment/probes/workload-fetch.js';
import { withWorkloadFetcher } from '../deployment/probes/workload-fetcher.js';
import { probeEndpoints } from '../deployment/probes/probe-fleet.js';

/** One upstream server's authority before and after a rotation. */
export interface ServerRotation {
  server: string;
  oldAuthority: string;
  newAuthority: string;
}

/** One workload as `status --json` lists it: who it is, which agent serves it and how it is told apart. */
export interface WorkloadView {
  spiffeId: string;
  group: string;
  agent: { index: number; spiffeId: string };
  /** The agent's Workload API socket. */
  socket: string;
  /** Its entry's selectors: `unix:gid:<its own gid>` as root, else the worker's shared `unix:uid`. */
  selectors: string[];
}

export interface WorkloadReport {
  workloads: number;
  /** X.509 authority id each workload's SVID chains to, by SPIFFE ID. */
  roots: Record<string, string>;
  /** Every workload; absent from deployments spun up before workloads were listed. */
  list?: WorkloadView[];
}

const workloadList = (deployment: Deployment, slots: WorkloadSlot[]): WorkloadView[] =>
  slots.map((slot) => ({
    spiffeId: slot.spiffeId,
    group: slot.group,
    agent: { index: slot.agent, spiffeId: deployment.agentNodeId(slot.group, slot.agent) },
    socket: slot.socket,
    selectors: slot.selectors,
  }));

const POLL_MS = 500;

/** Errors of the caller's making: retrying cannot help. */
function badInput(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'BadInput');
}

/** Polls `check` until it returns a value, heartbeating so a cancelled or dead worker is noticed. */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    Context.current().heartbeat({ waitingFor: what, last });
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    await Context.current().sleep(POLL_MS);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${last}` : ''}`);
}

/**
 * The entries of a server group's workloads ('upstream' or a downstream's name) registered on its
 * servers, each under its agent's node id and selecting the workload by its own identity (its gid as
 * root, which its probe runs under).
 */
async function ensureGroupEntries(deployment: Deployment, group: string): Promise<{ entries: number }> {
  const stack = await deployment.findStack(group);
  if (!stack) throw badInput(`deployment ${deployment.id} has no downstream "${group}"`);
  const slots = (await deployment.workloads()).filter((w) => w.group === group);
  if (slots.length === 0) return { entries: 0 };
  for (const slot of slots)
    await stack.admin().ensureEntry({
      parentId: deployment.agentNodeId(group, slot.agent),
      spiffeId: slot.spiffeId,
      selectors: slot.selectors,
    });
  return { entries: slots.length };
}

/**
 * Authority ids of the other HA upstream servers that a rotation moves along with the first
 * server's, by the first server's id; in the run directory, so any worker's waits expect them too.
 */
const counterpartsFile = (deployment: Deployment) =>
  join(deployment.plan.runDir, 'authority-counterparts.json');

function readCounterparts(deployment: Deployment): Record<string, string[]> {
  const file = counterpartsFile(deployment);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string[]>) : {};
}

function writeCounterparts(deployment: Deployment, counterparts: Record<string, string[]>): void {
  const file = counterpartsFile(deployment);
  writeFileSync(`${file}.tmp`, JSON.stringify(counterparts, null, 2));
  renameSync(`${file}.tmp`, file);
}

const withCounterparts = (deployment: Deployment, ids: string[]) => {
  const counterparts = readCounterparts(deployment);
  return ids.flatMap((id) => [id, ...(counterparts[id] ?? [])]);
};

/**
 * Temporal activities over deployment/ and the servers' admin APIs. Each is idempotent (ensure-*),
 * finds the deployment again from its run directory, and heartbeats while it waits.
 */
export const deploymentActivities = {
  async planDeployment(input: { id: string; topology: Topology }): Promise<{ runDir: string }> {
    try {
      const deployment = await Deployment.open(input.id, input.topology);
      return { runDir: deployment.plan.runDir };
    } catch (error) {
      if (
        (error as Error).message.startsWith('invalid deployment id') ||
        error instanceof MissingPostgresBinaries ||
        error instanceof ImplementationUnavailable
      )
        throw badInput((error as Error).message);
      throw error;
    }
  },

  /**
   * The upstream side up: the managed datastore (with every group's database), the servers (and
   * their balancer), then the agents directly under them and their workloads' entries.
   */
  async ensureUpstream(input: { id: string }): Promise<{ servers: number; loadBalancer: boolean }> {
    const deployment = await Deployment.open(input.id);
    try {
      await heartbeating('starting the managed datastore', deployment.ensureDatastore());
    } catch (error) {
      if (error instanceof MissingPostgresBinaries) throw badInput(error.message);
      throw error;
    }
    const { upstream } = await deployment.identityStacks();
    await heartbeating('starting upstream servers', upstream.ensureServers());
    await upstream.writeBootstrapBundle();
    for (let i = 0; i < upstream.agentSockets.length; i++)
      await heartbeating(
        `upstream agent ${i}`,
        upstream.ensureAgent(i, deployment.agentNodeId('upstream', i)),
      );
    await ensureGroupEntries(deployment, 'upstream');
    return { servers: upstream.serverPorts.length, loadBalancer: deployment.topology.upstream.loadBalancer };
  },

  async ensureDownstreamServer(input: { id: string; name: string }): Promise<{ downstreamId: string }> {
    const { downstreams } = await (await Deployment.open(input.id)).identityStacks();
    const stack = downstreams[input.name];
    if (!stack) throw badInput(`deployment ${input.id} has no downstream "${input.name}"`);
    Context.current().heartbeat('starting the upstream agent and the downstream server');
    await stack.ensureDownstream();
    await stack.writeBootstrapBundle();
    return { downstreamId: stack.downstreamId };
  },

  async ensureDownstreamAgents(input: { id: string; name: string }): Promise<{ agents: number }> {
    const deployment = await Deployment.open(input.id);
    const { downstreams } = await deployment.identityStacks();
    const stack = downstreams[input.name];
    if (!stack) throw badInput(`deployment ${input.id} has no downstream "${input.name}"`);
    for (let i = 0; i < stack.agentSockets.length; i++) {
      Context.current().heartbeat(`agent ${i}`);
      await stack.ensureAgent(i, deployment.agentNodeId(input.name, i));
    }
    return { agents: stack.agentSockets.length };
  },

  async ensureWorkloadEntries(input: { id: string; name: string }): Promise<{ entries: number }> {
    return ensureGroupEntries(await Deployment.open(input.id), input.name);
  },

  /** Waits until every workload holds an SVID that verifies against its bundle; reports each one's root. */
  async verifyWorkloads(input: { id: string; timeoutMs?: number }): Promise<WorkloadReport> {
    const deployment = await Deployment.open(input.id);
    const slots = await deployment.workloads();
    return withWorkloadFetcher((fetcher) =>
      until(
        'every workload to hold a valid SVID',
        async () => {
          const svids = await fetcher.workloadSvids(slots);
          const roots: Record<string, string> = {};
          for (const { slot, svid } of svids) {
            if (!svid) return undefined;
            const [root] = verifyingRoots(svid);
            if (!root) return undefined;
            roots[slot.spiffeId] = root;
          }
          return { workloads: slots.length, roots, list: workloadList(deployment, slots) };
        },
        input.timeoutMs ?? 120_000,
      ),
    );
  },

  /** The authority states of the first upstream server, whose authority ids name a rotation. */
  async authorityState(input: { id: string; kind: AuthorityKind }): Promise<AuthorityStates> {
    const { upstream } = await (await Deployment.open(input.id)).identityStacks();
    return authorityState(upstream.admin(), input.kind);
  },

  /**
   * One step of a forced rotation on the root, idempotent: a step already done (by an attempt whose
   * reply was lost) is answered from the current state instead of failing. HA upstream servers each
   * have their own authorities, as in SPIRE, so the step runs on every one: the first server's
   * authority ids name the rotation, and `prepare` records the others' as their counterparts.
   */
  async localAuthority(input: {
    id: string;
    kind: AuthorityKind;
    action: AuthorityAction;
    authorityId?: string;
  }): Promise<string> {
    if (input.action !== 'prepare' && !input.authorityId)
      throw badInput(`${input.action} needs an authority id`);
    const deployment = await Deployment.open(input.id);
    const { upstream } = await deployment.identityStacks();
    const counterparts = readCounterparts(deployment);
    const ids: string[] = [];
    const activeBefore: (string | undefined)[] = [];
    for (let i = 0; i < upstream.serverSockets.length; i++) {
      let authorityId = input.authorityId;
      if (i > 0 && input.action !== 'prepare') {
        authorityId = counterparts[input.authorityId ?? '']?.[i - 1];
        if (!authorityId)
          throw new Error(
            `upstream server ${i} has no recorded counterpart of authority ${input.authorityId}`,
          );
      }
      const server = upstream.admin(i);
      const state = await authorityState(server, input.kind);
      activeBefore.push(state.active);
      ids.push(await authorityStep(server, input.kind, input.action, authorityId, state));
    }
    if (input.action === 'prepare' && ids.length > 1)
      writeCounterparts(deployment, {
        ...counterparts,
        [ids[0]!]: ids.slice(1),
        [activeBefore[0]!]: activeBefore.slice(1).map((id) => id!),
      });
    return ids[0]!;
  },

  /**
   * Waits until every server's bundle (and, for X.509, every workload's) holds each of `include` and
   * none of `exclude`.
   */
  async waitBundles(input: {
    id: string;
    kind: AuthorityKind;
    include: string[];
    exclude?: string[];
    timeoutMs?: number;
  }) {
    const deployment = await Deployment.open(input.id);
    const { upstream, downstreams } = await deployment.identityStacks();
    const stacks = [upstream, ...Object.values(downstreams)];
    const include = withCounterparts(deployment, input.include);
    const exclude = withCounterparts(deployment, input.exclude ?? []);
    const holds = (ids: string[]) =>
      include.every((i) => ids.includes(i)) && !exclude.some((e) => ids.includes(e));
    const slots = await deployment.workloads();
    return withWorkloadFetcher((fetcher) =>
      until(
        `every bundle to hold ${input.include.join(' and ')}${exclude.length ? ` and not ${exclude.join(', ')}` : ''}`,
        async () => {
          for (const stack of stacks) {
            const ids = [...(await bundleAuthoritiesOf(stack.admin(), input.kind)).keys()];
            // Real SPIRE's downstream keeps a JWT key its upstream revoked until the key expires:
            // there, the rotation can only see the new key arrive (README, "Drilling real SPIRE").
            const keepsRevoked =
              input.kind === 'jwt' && stack !== upstream && stack.implementation.keepsRevokedUpstreamJwtKeys;
            if (keepsRevoked ? !include.every((i) => ids.includes(i)) : !holds(ids)) return undefined;
          }
          if (input.kind === 'x509') {
            for (const { svid } of await fetcher.workloadSvids(slots)) {
              if (!svid || !holds(svid.bundle.map((d) => x509AuthorityId(d)))) return undefined;
            }
            // Agents serving no workload count too: a downstream's upstream agent that does not trust
            // a root its servers sign from cannot sync, and the downstream is cut off with it.
            for (const agent of await agentTrust(deployment)) if (!holds([...agent.roots])) return undefined;
          }
          return { servers: stacks.length };
        },
        input.timeoutMs ?? 120_000,
      ),
    );
  },

  /** Waits until every workload's SVID chains to `authorityId` (or a counterpart) and to no other root. */
  async waitWorkloadsOn(input: { id: string; authorityId: string; timeoutMs?: number }) {
    const deployment = await Deployment.open(input.id);
    const slots = await deployment.workloads();
    const accepted = withCounterparts(deployment, [input.authorityId]);
    return withWorkloadFetcher((fetcher) =>
      until(
        `every workload and agent on authority ${input.authorityId}`,
        async () => {
          for (const { svid } of await fetcher.workloadSvids(slots)) {
            if (!svid) return undefined;
            const roots = verifyingRoots(svid);
            if (roots.length !== 1 || !accepted.includes(roots[0]!)) return undefined;
          }
          // An agent still on the old root when it is revoked cannot reach its server again.
          for (const agent of await agentTrust(deployment))
            if (!agent.svidAuthorities.some((id) => accepted.includes(id))) return undefined;
          return { workloads: slots.length };
        },
        input.timeoutMs ?? 180_000,
      ),
    );
  },

  /**
   * Waits until no workload is handed a JWT-SVID signed by `keyId` (or an HA server's counterpart)
   * for the audience its probe asks for: its agent has dropped what the tainted key signed, so
   * revoking the key breaks no token a workload would still present. (A downstream's workloads hold
   * tokens from their own servers' keys, which a rotation of the root's key leaves alone.)
   */
  async waitWorkloadsOffJwtKey(input: { id: string; keyId: string; timeoutMs?: number }) {
    const deployment = await Deployment.open(input.id);
    const endpoints = await probeEndpoints(deployment);
    const rotatedOut = withCounterparts(deployment, [input.keyId]);
    return withWorkloadFetcher((fetcher) =>
      until(
        `no workload handed JWT-SVIDs signed by ${input.keyId}`,
        async () => {
          for (const endpoint of endpoints) {
            const token = await fetcher.jwtSvid(endpoint, endpoint.audience).catch(() => undefined);
            if (!token || rotatedOut.includes(decodeProtectedHeader(token).kid ?? '')) return undefined;
          }
          return { workloads: endpoints.length };
        },
        input.timeoutMs ?? 180_000,
      ),
    );
  },

  /** Each upstream server's old and new authority of a rotation, as `prepare` recorded them. */
  async rotatedAuthorities(input: {
    id: string;
    oldAuthority: string;
    newAuthority: string;
  }): Promise<ServerRotation[]> {
    const deployment = await Deployment.open(input.id);
    const counterparts = readCounterparts(deployment);
    const olds = [input.oldAuthority, ...(counterparts[input.oldAuthority] ?? [])];
    const news = [input.newAuthority, ...(counterparts[input.newAuthority] ?? [])];
    return news.map((newAuthority, i) => ({
      server: `upstream server ${i}`,
      oldAuthority: olds[i] ?? 'unknown',
      newAuthority,
    }));
  },

  /** Stops every process; then checks nothing is left (processes, sockets, ports), and removes the data. */
  async teardownDeployment(input: { id: string; keepData?: boolean }): Promise<{ leftovers: string[] }> {
    let deployment: Deployment;
    try {
      deployment = await Deployment.open(input.id);
    } catch {
      return { leftovers: [] };
    }
    Context.current().heartbeat('stopping processes');
    await deployment.stopAll();
    const leftovers = await deployment.leftovers();
    if (leftovers.length > 0) throw new Error(`teardown left behind: ${leftovers.join('; ')}`);
    if (!input.keepData) await deployment.removeData();
    return { leftovers };
  },
};

export type DeploymentActivities = typeof deploymentActivities;
