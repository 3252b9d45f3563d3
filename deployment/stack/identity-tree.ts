import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ImplementationName } from '../implementation/implementation.js';
import type { DatabaseChoice } from '../implementation/spire-configs.js';
import { DOWNSTREAM_SERVER_GID, IdentityStack } from './identity-stack.js';

export interface TreeWorkload {
  /** `l<level><branch>`: l1a is issued by the root, l2a by intermediate A, l3a by leaf A. */
  name: string;
  spiffeId: string;
  /** The Workload API socket of the agent that serves it. */
  socket: string;
}

export interface NestedTreeOptions {
  runDir: string;
  trustDomain?: string;
  /** A datastore per server: root, mida, midb, leafa, leafb. */
  database: (server: string) => Promise<DatabaseChoice>;
  caTtl?: string;
  x509SvidTtl?: string;
  syncInterval?: string;
  /** Group id of the processes that fetch the workloads' SVIDs (their `unix:gid` selector). */
  workloadGid: number;
  /** Which SPIRE every server and agent of the tree runs (default the bundled one). */
  implementation?: ImplementationName;
}

/**
 * SPIRE's nested reference shape on this host: a root server, intermediate servers A and B under
 * it, leaf servers A and B under those, each downstream fed by its own upstream agent, an agent on
 * each leaf, and one workload under every agent, so each level issues to someone.
 */
export class NestedTree {
  private constructor(
    readonly stacks: Record<string, IdentityStack>,
    readonly workloads: TreeWorkload[],
  ) {}

  get root(): IdentityStack {
    return this.stacks.root!;
  }

  static async start(options: NestedTreeOptions): Promise<NestedTree> {
    if (options.workloadGid === DOWNSTREAM_SERVER_GID)
      throw new Error(`workloads must not share the downstream servers' group id ${DOWNSTREAM_SERVER_GID}`);
    const td = options.trustDomain ?? 'example.org';
    const stacks: Record<string, IdentityStack> = {};
    const workloads: TreeWorkload[] = [];
    const tree = new NestedTree(stacks, workloads);
    const make = async (name: string, upstream?: IdentityStack, agents = 0) => {
      const dir = join(options.runDir, name);
      mkdirSync(dir, { recursive: true });
      stacks[name] = await IdentityStack.create({
        runDir: dir,
        trustDomain: td,
        database: await options.database(name),
        caTtl: options.caTtl ?? '1h',
        x509SvidTtl: options.x509SvidTtl ?? '1h',
        syncInterval: options.syncInterval ?? '5s',
        agents,
        ...(options.implementation ? { implementation: options.implementation } : {}),
        ...(upstream ? { upstream } : {}),
      });
      return stacks[name]!;
    };
    try {
      const root = await make('root');
      await root.startServer();
      for (const branch of ['a', 'b']) {
        const mid = await make(`mid${branch}`, root);
        await mid.ensureDownstream();
        const leaf = await make(`leaf${branch}`, mid, 1);
        await leaf.ensureDownstream();
        await leaf.writeBootstrapBundle();
        const node = `spiffe://${td}/leaf${branch}/agent`;
        await leaf.startAgent(await leaf.generateToken(node));
        const placements: [IdentityStack, string, string, string][] = [
          [root, `${mid.downstreamId}/node`, `l1${branch}`, mid.upstreamAgentSocket],
          [mid, `${leaf.downstreamId}/node`, `l2${branch}`, leaf.upstreamAgentSocket],
          [leaf, node, `l3${branch}`, leaf.agentSocket],
        ];
        for (const [server, parentId, name, socket] of placements) {
          const spiffeId = `spiffe://${td}/workload/${name}`;
          await server
            .admin()
            .createEntry({ parentId, spiffeId, selectors: [`unix:gid:${options.workloadGid}`] });
          workloads.push({ name, spiffeId, socket });
        }
      }
      return tree;
    } catch (error) {
      await tree.stop();
      throw error;
    }
  }

  /** Stops every process, leaves first. */
  async stop(): Promise<void> {
    for (const stack of Object.values(this.stacks).reverse()) await stack.stop();
  }
}
