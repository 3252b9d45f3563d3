import { Context, ApplicationFailure } from '@temporalio/activity';
import { Deployment } from '../deployment/deployment.js';
import type { Topology } from '../deployment/topology.js';
import { AdminApi } from '../identity-core/cli/admin-api.js';
import { unary } from '../identity-core/cli/grpc-call.js';
import type { Bundle__Output } from '../identity-core/proto/gen/spire/api/types/Bundle.js';
import type { ListEntriesResponse__Output } from '../identity-core/proto/gen/spire/api/server/entry/v1/ListEntriesResponse.js';
import { x509AuthorityId } from '../identity-core/spiffe/trust-bundle.js';
import { fetchWorkloadSvids, verifyingRoots } from '../deployment/workload-fetch.js';

export type AuthorityKind = 'x509' | 'jwt';
export type AuthorityAction = 'prepare' | 'activate' | 'taint' | 'revoke';

export interface AuthorityStates {
  active?: string;
  prepared?: string;
  old?: string;
  oldTainted?: boolean;
}

export interface WorkloadReport {
  workloads: number;
  /** X.509 authority id each workload's SVID chains to, by SPIFFE ID. */
  roots: Record<string, string>;
}

const POLL_MS = 500;

/** Errors of the caller's making: retrying cannot help. */
function badInput(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'BadInput');
}

async function withUpstreamAdmin<T>(id: string, fn: (admin: AdminApi) => Promise<T>): Promise<T> {
  const { upstream } = await (await Deployment.open(id)).identityStacks();
  const admin = new AdminApi(upstream.serverSocket);
  try {
    return await fn(admin);
  } finally {
    admin.close();
  }
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
 * Temporal activities over deployment/ and the servers' admin APIs. Each is idempotent (ensure-*),
 * finds the deployment again from its run directory, and heartbeats while it waits.
 */
export const deploymentActivities = {
  async planDeployment(input: { id: string; topology: Topology }): Promise<{ runDir: string }> {
    try {
      const deployment = await Deployment.open(input.id, input.topology);
      return { runDir: deployment.plan.runDir };
    } catch (error) {
      if ((error as Error).message.startsWith('invalid deployment id'))
        throw badInput((error as Error).message);
      throw error;
    }
  },

  async ensureUpstream(input: { id: string }): Promise<{ servers: number; loadBalancer: boolean }> {
    const deployment = await Deployment.open(input.id);
    const { upstream } = await deployment.identityStacks();
    Context.current().heartbeat('starting upstream servers');
    await upstream.ensureServers();
    await upstream.writeBootstrapBundle();
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
    const deployment = await Deployment.open(input.id);
    const { downstreams } = await deployment.identityStacks();
    const stack = downstreams[input.name]!;
    const slots = (await deployment.workloads()).filter((w) => w.downstream === input.name);
    const admin = new AdminApi(stack.serverSocket);
    try {
      const listed = await unary<ListEntriesResponse__Output>((done) =>
        admin.entry().ListEntries({ pageSize: 1000 }, done),
      );
      const existing = new Set(
        listed.entries.map((e) => `spiffe://${e.spiffeId!.trustDomain}${e.spiffeId!.path}`),
      );
      const missing = slots.filter((s) => !existing.has(s.spiffeId));
      for (const slot of missing) {
        const created = await stack.serverCli([
          'entry',
          'create',
          '-parentID',
          deployment.agentNodeId(slot.downstream, slot.agent),
          '-spiffeID',
          slot.spiffeId,
          '-selector',
          `unix:uid:${process.getuid!()}`,
        ]);
        if (created.code !== 0) throw new Error(`entry create failed: ${created.stderr || created.stdout}`);
      }
      return { entries: slots.length };
    } finally {
      admin.close();
    }
  },

  /** Waits until every workload holds an SVID that verifies against its bundle; reports each one's root. */
  async verifyWorkloads(input: { id: string; timeoutMs?: number }): Promise<WorkloadReport> {
    const deployment = await Deployment.open(input.id);
    const slots = await deployment.workloads();
    return until(
      'every workload to hold a valid SVID',
      async () => {
        const svids = await fetchWorkloadSvids(slots);
        const roots: Record<string, string> = {};
        for (const { slot, svid } of svids) {
          if (!svid) return undefined;
          const [root] = verifyingRoots(svid);
          if (!root) return undefined;
          roots[slot.spiffeId] = root;
        }
        return { workloads: slots.length, roots };
      },
      input.timeoutMs ?? 120_000,
    );
  },

  async authorityState(input: { id: string; kind: AuthorityKind }): Promise<AuthorityStates> {
    return withUpstreamAdmin(input.id, async (admin) => {
      const client = admin.localAuthority();
      type State = { authorityId: string } | null;
      const response = await unary<{ active: State; prepared: State; old: State }>((done) =>
        input.kind === 'x509'
          ? client.GetX509AuthorityState({}, done)
          : client.GetJWTAuthorityState({}, done),
      );
      const bundle = await unary<Bundle__Output>((done) => admin.bundle().GetBundle({}, done));
      const old = response.old?.authorityId;
      const oldTainted =
        old === undefined
          ? undefined
          : input.kind === 'x509'
            ? bundle.x509Authorities.some((a) => x509AuthorityId(Buffer.from(a.asn1)) === old && a.tainted)
            : bundle.jwtAuthorities.some((k) => k.keyId === old && k.tainted);
      return {
        ...(response.active ? { active: response.active.authorityId } : {}),
        ...(response.prepared ? { prepared: response.prepared.authorityId } : {}),
        ...(old ? { old } : {}),
        ...(oldTainted !== undefined ? { oldTainted } : {}),
      };
    });
  },

  /**
   * One step of a forced rotation on the root, idempotent: a step already done (by an attempt whose
   * reply was lost) is answered from the current state instead of failing.
   */
  async localAuthority(input: {
    id: string;
    kind: AuthorityKind;
    action: AuthorityAction;
    authorityId?: string;
  }): Promise<string> {
    const state = await deploymentActivities.authorityState({ id: input.id, kind: input.kind });
    const name = input.kind === 'x509' ? 'X509' : 'JWT';
    type Answer = Record<string, { authorityId: string } | null>;
    const call = (method: string, request: object) =>
      withUpstreamAdmin(input.id, (admin) =>
        unary<Answer>((done) =>
          (admin.localAuthority() as unknown as Record<string, (r: object, d: typeof done) => unknown>)[
            method
          ]!(request, done),
        ),
      );
    switch (input.action) {
      case 'prepare': {
        if (state.prepared) return state.prepared;
        const r = await call(`Prepare${name}Authority`, {});
        return r.preparedAuthority!.authorityId;
      }
      case 'activate': {
        if (!input.authorityId) throw badInput('activate needs an authority id');
        if (state.active === input.authorityId) return input.authorityId;
        await call(`Activate${name}Authority`, { authorityId: input.authorityId });
        return input.authorityId;
      }
      case 'taint': {
        if (!input.authorityId) throw badInput('taint needs an authority id');
        if (state.old === input.authorityId && state.oldTainted) return input.authorityId;
        await call(`Taint${name}Authority`, { authorityId: input.authorityId });
        return input.authorityId;
      }
      case 'revoke': {
        if (!input.authorityId) throw badInput('revoke needs an authority id');
        if (state.old !== input.authorityId) return input.authorityId;
        await call(`Revoke${name}Authority`, { authorityId: input.authorityId });
        return input.authorityId;
      }
    }
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
    const exclude = input.exclude ?? [];
    const holds = (ids: string[]) =>
      input.include.every((i) => ids.includes(i)) && !exclude.some((e) => ids.includes(e));
    return until(
      `every bundle to hold ${input.include.join(' and ')}${exclude.length ? ` and not ${exclude.join(', ')}` : ''}`,
      async () => {
        for (const stack of stacks) {
          const admin = new AdminApi(stack.serverSocket);
          try {
            const bundle = await unary<Bundle__Output>((done) => admin.bundle().GetBundle({}, done));
            const ids =
              input.kind === 'x509'
                ? bundle.x509Authorities.map((a) => x509AuthorityId(Buffer.from(a.asn1)))
                : bundle.jwtAuthorities.map((k) => k.keyId);
            if (!holds(ids)) return undefined;
          } finally {
            admin.close();
          }
        }
        if (input.kind === 'x509') {
          for (const { svid } of await fetchWorkloadSvids(await deployment.workloads())) {
            if (!svid || !holds(svid.bundle.map((d) => x509AuthorityId(d)))) return undefined;
          }
        }
        return { servers: stacks.length };
      },
      input.timeoutMs ?? 120_000,
    );
  },

  /** Waits until every workload's SVID chains to `authorityId` and to no other root. */
  async waitWorkloadsOn(input: { id: string; authorityId: string; timeoutMs?: number }) {
    const deployment = await Deployment.open(input.id);
    const slots = await deployment.workloads();
    return until(
      `every workload on authority ${input.authorityId}`,
      async () => {
        for (const { svid } of await fetchWorkloadSvids(slots)) {
          if (!svid) return undefined;
          const roots = verifyingRoots(svid);
          if (roots.length !== 1 || roots[0] !== input.authorityId) return undefined;
        }
        return { workloads: slots.length };
      },
      input.timeoutMs ?? 180_000,
    );
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
