import type { RegistrationEntry } from '../datastore/records.js';

export interface EntrySource {
  listAll(): Promise<RegistrationEntry[]>;
}

export interface EntryCacheEvents {
  reloaded(count: number, ms: number): void;
  reloadFailed(error: unknown): void;
}

/**
 * The server's in-memory view of registration entries, as SPIRE keeps one: authorization of agent
 * calls reads it, so a datastore outage leaves it working on the last good copy. A failed reload is
 * only reported; the previous snapshot stays.
 */
export class EntryCache {
  private byParent = new Map<string, RegistrationEntry[]>();
  private byId = new Map<string, RegistrationEntry>();
  private downstreamIds = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private loadedAt = 0;

  constructor(
    private readonly source: EntrySource,
    private readonly reloadIntervalMs: number,
    private readonly events: EntryCacheEvents,
  ) {}

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(
      () => void this.reload().catch((error) => this.events.reloadFailed(error)),
      this.reloadIntervalMs,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get lastReload(): number {
    return this.loadedAt;
  }

  async reload(): Promise<void> {
    const started = performance.now();
    const entries = await this.source.listAll();
    this.replace(entries);
    this.events.reloaded(entries.length, performance.now() - started);
  }

  /**
   * Applies the caller's own write at once, so a create followed by a sync does not wait for the next
   * reload. Touches only the entry's siblings: a batch of creates must not rebuild the whole cache each time.
   */
  upsert(entry: RegistrationEntry): void {
    this.detach(entry.id);
    this.byId.set(entry.id, entry);
    const siblings = this.byParent.get(entry.parentId);
    if (siblings) siblings.push(entry);
    else this.byParent.set(entry.parentId, [entry]);
    if (entry.downstream) this.downstreamIds.add(entry.spiffeId);
  }

  remove(id: string): void {
    this.detach(id);
  }

  private detach(id: string): void {
    const existing = this.byId.get(id);
    if (!existing) return;
    this.byId.delete(id);
    const siblings = this.byParent.get(existing.parentId) ?? [];
    const index = siblings.findIndex((e) => e.id === id);
    if (index >= 0) siblings.splice(index, 1);
    if (siblings.length === 0) this.byParent.delete(existing.parentId);
    if (
      existing.downstream &&
      ![...this.byId.values()].some((e) => e.downstream && e.spiffeId === existing.spiffeId)
    )
      this.downstreamIds.delete(existing.spiffeId);
  }

  get(id: string): RegistrationEntry | undefined {
    return this.byId.get(id);
  }

  /** Whether a SPIFFE ID belongs to an entry marked `downstream`: such callers may obtain a CA. */
  isDownstream(spiffeId: string): boolean {
    return this.downstreamIds.has(spiffeId);
  }

  /**
   * Entries an agent may hold SVIDs for: those parented to the agent, and recursively those parented
   * to any SPIFFE ID of an entry already reached (how SPIRE nests workloads under a downstream or node alias).
   */
  authorizedEntries(agentId: string, now = Date.now() / 1000): RegistrationEntry[] {
    const result: RegistrationEntry[] = [];
    const visitedParents = new Set<string>();
    const queue = [agentId];
    while (queue.length > 0) {
      const parent = queue.shift()!;
      if (visitedParents.has(parent)) continue;
      visitedParents.add(parent);
      for (const entry of this.byParent.get(parent) ?? []) {
        if (entry.expiresAt !== 0 && entry.expiresAt <= now) continue;
        result.push(entry);
        queue.push(entry.spiffeId);
      }
    }
    return result;
  }

  private replace(entries: RegistrationEntry[]): void {
    const byParent = new Map<string, RegistrationEntry[]>();
    const byId = new Map<string, RegistrationEntry>();
    const downstreamIds = new Set<string>();
    for (const entry of entries) {
      byId.set(entry.id, entry);
      if (entry.downstream) downstreamIds.add(entry.spiffeId);
      const siblings = byParent.get(entry.parentId);
      if (siblings) siblings.push(entry);
      else byParent.set(entry.parentId, [entry]);
    }
    this.byParent = byParent;
    this.byId = byId;
    this.downstreamIds = downstreamIds;
    this.loadedAt = Date.now();
  }
}
