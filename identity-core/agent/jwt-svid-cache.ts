/** A JWT-SVID the agent obtained from the server for one SPIFFE ID and audience set. */
export interface CachedJwtSvid {
  token: string;
  issuedAt: number;
  expiresAt: number;
}

/**
 * JWT-SVIDs cannot be minted ahead (the audience is only known when a workload asks), so the agent
 * keeps the ones it fetched per (SPIFFE ID, sorted audiences): reused until half their lifetime, and
 * still handed out while valid when the server cannot issue a fresh one.
 */
export class JwtSvidCache {
  private readonly tokens = new Map<string, CachedJwtSvid>();

  private static key(spiffeId: string, audience: string[]): string {
    return JSON.stringify([spiffeId, [...new Set(audience)].sort()]);
  }

  /** A token fresh enough to reuse without asking the server. */
  fresh(spiffeId: string, audience: string[], nowSeconds: number): CachedJwtSvid | undefined {
    const cached = this.tokens.get(JwtSvidCache.key(spiffeId, audience));
    if (!cached) return undefined;
    const half = cached.issuedAt + (cached.expiresAt - cached.issuedAt) / 2;
    return nowSeconds < half ? cached : undefined;
  }

  /** A token that is still valid, for when the server is unreachable. */
  valid(spiffeId: string, audience: string[], nowSeconds: number): CachedJwtSvid | undefined {
    const cached = this.tokens.get(JwtSvidCache.key(spiffeId, audience));
    return cached && nowSeconds < cached.expiresAt ? cached : undefined;
  }

  put(spiffeId: string, audience: string[], svid: CachedJwtSvid): void {
    this.tokens.set(JwtSvidCache.key(spiffeId, audience), svid);
  }

  /** Drops expired tokens so the map does not grow with audiences nobody asks for any more. */
  prune(nowSeconds: number): void {
    for (const [key, svid] of this.tokens) if (svid.expiresAt <= nowSeconds) this.tokens.delete(key);
  }

  /** Forgets everything, e.g. when a JWT authority is tainted. */
  clear(): void {
    this.tokens.clear();
  }
}
