import { decodeProtectedHeader } from 'jose';
import type { Logger } from 'pino';
import type { NewJWTSVIDResponse__Output } from '../proto/gen/spire/api/server/svid/v1/NewJWTSVIDResponse.js';
import { RpcError } from '../transport/rpc-error.js';
import type { JwtSvidCache } from './jwt-svid-cache.js';
import { call, type ServerClients, type ServerConnection } from '../transport/server-connection.js';
import type { JwtSvidSource } from './workload-api.js';

/** JWT-SVIDs for the Workload API: the cached token while fresh, else a new one from the server, else a still-valid cached one. */
export class CachingJwtSvidSource implements JwtSvidSource {
  /** The tainted key ids last applied to the cache, joined: the cache is swept only when they change. */
  private taintApplied = '';

  constructor(
    private readonly cache: JwtSvidCache,
    private readonly clients: () => ServerClients,
    private readonly connection: Pick<ServerConnection, 'reset'>,
    private readonly logger: Logger,
    /** The JWT key ids the agent's bundle marks tainted. */
    private readonly taintedKeyIds: () => string[],
    private readonly onTaintedDropped: (count: number) => void,
  ) {}

  /** Drops cached tokens signed by a key tainted since the last look, so they are fetched again. */
  private dropTainted(): void {
    const tainted = this.taintedKeyIds();
    const joined = [...tainted].sort().join(',');
    if (joined === this.taintApplied) return;
    this.taintApplied = joined;
    const dropped = this.cache.dropSignedBy(new Set(tainted));
    if (dropped > 0) {
      this.onTaintedDropped(dropped);
      this.logger.info({ count: dropped, tainted_keys: tainted }, 'Tainted JWT-SVIDs dropped from the cache');
    }
  }

  async fetch(entryId: string, spiffeId: string, audience: string[]): Promise<string> {
    this.dropTainted();
    const now = Date.now() / 1000;
    const fresh = this.cache.fresh(spiffeId, audience, now);
    if (fresh) return fresh.token;
    let clients: ServerClients | undefined;
    try {
      clients = this.clients();
      const svc = clients.svid;
      const response = await call<NewJWTSVIDResponse__Output>((o, done) =>
        svc.NewJWTSVID({ entryId, audience }, o, done),
      );
      if (!response.svid) throw new Error('server returned no JWT-SVID');
      const { token, issuedAt, expiresAt } = response.svid;
      const keyId = decodeProtectedHeader(token).kid ?? '';
      this.cache.put(spiffeId, audience, { token, issuedAt, expiresAt, keyId });
      return token;
    } catch (error) {
      if (clients) this.connection.reset(clients);
      const valid = this.cache.valid(spiffeId, audience, now);
      if (valid) {
        this.logger.warn(
          { spiffe_id: spiffeId, err: (error as Error).message },
          'Could not renew JWT-SVID; serving the cached one',
        );
        return valid.token;
      }
      throw RpcError.unavailable(`could not fetch JWT-SVID: ${(error as Error).message}`);
    }
  }
}
