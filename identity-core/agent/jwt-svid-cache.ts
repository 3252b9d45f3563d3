/** A JWT-SVID the agent obtained from the server for one SPIFFE ID and audience set. */
export interface CachedJwtSvid {
  token: string;
  issuedAt: number;
  expiresAt: number;
  /** The `kid` of the key that signed it, so that a tainted key's tokens can be dropped. */
  keyId: string;
}

/** SPIRE's agent default for `jwt_svid_cache_size`. */
export const DEFAULT_JWT_SVID_CACHE_SIZE = 1000;

/** setTimeout's longest delay; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * JWT-SVIDs cannot be minted ahead (the audience is only known when a workload asks), so the agent
 * keeps the ones it fetched per (SPIFFE ID, sorted audiences): reused until half their lifetime, and
 * still handed out while valid when the server cannot issue a fresh one. At most `maxEntries` are
 * kept, the least recently used dropped first, so workloads asking for ever new audiences cannot
 * grow the agent without bound; each is dropped when it expires, so that memory taken by audiences
 * nobody asks for again comes back even if no workload calls afterwards.
 */
export class JwtSvidCache {
  private readonly tokens = new Map<string, CachedJwtSvid>();
  /** The pending expiry sweep: when it runs (seconds since the epoch) and its timer. */
  private sweep: { at: number; timer: NodeJS.Timeout } | undefined;

  constructor(private readonly maxEntries = DEFAULT_JWT_SVID_CACHE_SIZE) {}

  get size(): number {
    return this.tokens.size;
  }

  /** The cached token, now the most recently used (a Map keeps insertion order). */
  private use(key: string): CachedJwtSvid | undefined {
    const cached = this.tokens.get(key);
    if (cached) {
      this.tokens.delete(key);
      this.tokens.set(key, cached);
    }
    return cached;
  }

  private static key(spiffeId: string, audience: string[]): string {
    return JSON.stringify([spiffeId, [...new Set(audience)].sort()]);
  }

  /** A token fresh enough to reuse without asking the server. */
  fresh(spiffeId: string, audience: string[], nowSeconds: number): CachedJwtSvid | undefined {
    const cached = this.use(JwtSvidCache.key(spiffeId, audience));
    if (!cached) return undefined;
    const half = cached.issuedAt + (cached.expiresAt - cached.issuedAt) / 2;
    return nowSeconds < half ? cached : undefined;
  }

  /** A token that is still valid, for when the server is unreachable. */
  valid(spiffeId: string, audience: string[], nowSeconds: number): CachedJwtSvid | undefined {
    const cached = this.use(JwtSvidCache.key(spiffeId, audience));
    return cached && nowSeconds < cached.expiresAt ? cached : undefined;
  }

  put(spiffeId: string, audience: string[], svid: CachedJwtSvid): void {
    const key = JwtSvidCache.key(spiffeId, audience);
    this.tokens.delete(key);
    this.tokens.set(key, svid);
    for (const oldest of this.tokens.keys()) {
      if (this.tokens.size <= this.maxEntries) break;
      this.tokens.delete(oldest);
    }
    this.sweepAt(svid.expiresAt);
  }

  /**
   * Schedules a sweep for `at` unless one comes sooner. Entries may carry their own TTLs, so a token
   * put later can expire first. The timer is unref'd: it never keeps a stopping agent alive.
   */
  private sweepAt(at: number): void {
    if (this.sweep && this.sweep.at <= at) return;
    if (this.sweep) clearTimeout(this.sweep.timer);
    const delayMs = Math.min(MAX_TIMER_MS, Math.max(0, at * 1000 - Date.now()));
    const timer = setTimeout(() => {
      this.sweep = undefined;
      this.dropExpired(Date.now() / 1000);
    }, delayMs);
    timer.unref();
    this.sweep = { at, timer };
  }

  /**
   * Drops every token signed by one of `keyIds` (tainted JWT keys), as SPIRE's agent does: a token
   * from a tainted key stops validating once the key is revoked, so it is not handed out again.
   * Returns how many were dropped.
   */
  dropSignedBy(keyIds: ReadonlySet<string>): number {
    let dropped = 0;
    for (const [key, svid] of this.tokens)
      if (keyIds.has(svid.keyId)) {
        this.tokens.delete(key);
        dropped++;
      }
    return dropped;
  }

  /** Drops expired tokens and schedules the next sweep for the earliest expiry left. */
  private dropExpired(nowSeconds: number): void {
    let next = Infinity;
    for (const [key, svid] of this.tokens) {
      if (svid.expiresAt <= nowSeconds) this.tokens.delete(key);
      else next = Math.min(next, svid.expiresAt);
    }
    if (next !== Infinity) this.sweepAt(next);
  }

  /** Forgets everything and stops sweeping, e.g. when the agent stops. */
  clear(): void {
    this.tokens.clear();
    if (this.sweep) clearTimeout(this.sweep.timer);
    this.sweep = undefined;
  }
}
