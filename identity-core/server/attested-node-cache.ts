import type { AttestedNode } from '../datastore/records.js';

export interface AttestedNodeSource {
  get(spiffeId: string): Promise<AttestedNode | undefined>;
  list(): Promise<AttestedNode[]>;
}

/** How often the whole cache is rebuilt from the datastore, as SPIRE's node cache does. */
export const NODE_CACHE_REBUILD_MS = 5000;

/**
 * The server's copy of attested nodes, kept as SPIRE keeps it when max_attested_node_info_staleness
 * is set: rebuilt from the datastore every 5 s (a failed rebuild keeps the old copy), refreshed per
 * node by every datastore lookup, and a node dropped when its lookup fails. The agent authorizer
 * trusts a node younger than the staleness window instead of reading the datastore.
 */
export class AttestedNodeCache {
  private nodes = new Map<string, { node: AttestedNode; at: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: AttestedNodeSource,
    private readonly onRebuildFailed: (error: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    await this.rebuild();
    this.timer = setInterval(
      () => void this.rebuild().catch((error: unknown) => this.onRebuildFailed(error)),
      NODE_CACHE_REBUILD_MS,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The cached node and when it was read, without touching the datastore. */
  lookup(spiffeId: string): { node: AttestedNode; at: number } | undefined {
    return this.nodes.get(spiffeId);
  }

  /** Reads the node from the datastore and caches it; a failed read forgets the cached copy. */
  async fetch(spiffeId: string): Promise<AttestedNode | undefined> {
    let node: AttestedNode | undefined;
    try {
      node = await this.source.get(spiffeId);
    } catch (error) {
      this.nodes.delete(spiffeId);
      throw error;
    }
    if (node) this.nodes.set(spiffeId, { node, at: this.now() });
    else this.nodes.delete(spiffeId);
    return node;
  }

  async rebuild(): Promise<void> {
    const at = this.now();
    const nodes = await this.source.list();
    // SPIRE lists only nodes whose SVID is still valid at build time.
    this.nodes = new Map(
      nodes.filter((n) => n.certNotAfter * 1000 > at).map((n) => [n.spiffeId, { node: n, at }]),
    );
  }
}
