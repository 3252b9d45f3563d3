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

/**
 * JWT-SVIDs cannot be minted ahead (the audience is only known when a workload asks), so the agent
 * keeps the ones it fetched per (SPIFFE ID, sorted audiences): reused until half their lifetime, and
 * still handed out while valid when the server cannot issue a fresh one. At most `maxEntries` are
 * kept, the least recently used dropped first, so workloads asking for ever new audiences cannot
 * grow the agent without bound.
 */
export class JwtSvidCache {
  private readonly tokens = new Map<string, CachedJwtSvid>();

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
  }

  /** Drops expired tokens so the map does not grow with audiences nobody asks for any more. */
  prune(nowSeconds: number): void {
    for (const [key, svid] of this.tokens) if (svid.expiresAt <= nowSeconds) this.tokens.delete(key);
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
}
