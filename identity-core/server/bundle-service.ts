import { createPublicKey } from 'node:crypto';
import type { Logger } from 'pino';
import type { BundleHandlers } from '../proto/services.js';
import type { Bundle } from '../proto/gen/spire/api/types/Bundle.js';
import type { CountBundlesResponse } from '../proto/gen/spire/api/server/bundle/v1/CountBundlesResponse.js';
import type { ListFederatedBundlesResponse } from '../proto/gen/spire/api/server/bundle/v1/ListFederatedBundlesResponse.js';
import type { PublishJWTAuthorityResponse } from '../proto/gen/spire/api/server/bundle/v1/PublishJWTAuthorityResponse.js';
import { bundleToProto } from '../proto/convert.js';
import { RpcError } from '../transport/rpc-error.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { ApiAuthorization } from './api-authorization.js';
import type { CaManager } from './ca/ca-manager.js';

/**
 * bundle.v1: the trust domain's bundle, tainted flags included, for agents and operators alike; and
 * PublishJWTAuthority, through which downstream servers make their JWT keys trusted tree-wide. The
 * bundled SPIRE does not federate: the trust domain's own bundle is the only one it holds.
 */
export function bundleService(deps: {
  auth: ApiAuthorization;
  ca: CaManager;
  observe: RpcObserver;
  logger: Logger;
}): Partial<BundleHandlers> {
  return {
    GetBundle: unary('bundle.v1.Bundle', 'GetBundle', deps.observe, async (): Promise<Bundle> => {
      try {
        return bundleToProto(await deps.ca.bundle());
      } catch (error) {
        throw RpcError.internal(`failed to fetch bundle: ${(error as Error).message}`);
      }
    }),

    CountBundles: unary(
      'bundle.v1.Bundle',
      'CountBundles',
      deps.observe,
      async (_request, call): Promise<CountBundlesResponse> => {
        deps.auth.local(call, 'CountBundles');
        return { count: 1 };
      },
    ),

    ListFederatedBundles: unary(
      'bundle.v1.Bundle',
      'ListFederatedBundles',
      deps.observe,
      async (request, call): Promise<ListFederatedBundlesResponse> => {
        deps.auth.local(call, 'ListFederatedBundles');
        if (request.pageSize < 0) throw RpcError.invalidArgument('page size must not be negative');
        return { bundles: [], nextPageToken: '' };
      },
    ),

    PublishJWTAuthority: unary(
      'bundle.v1.Bundle',
      'PublishJWTAuthority',
      deps.observe,
      async (request, call): Promise<PublishJWTAuthorityResponse> => {
        const callerId = await deps.auth.downstream(call);
        const key = request.jwtAuthority;
        if (!key) throw RpcError.invalidArgument('missing JWT authority');
        if (key.keyId === '') throw RpcError.invalidArgument('invalid JWT authority: missing key ID');
        if (key.publicKey.length === 0)
          throw RpcError.invalidArgument('invalid JWT authority: missing public key');
        try {
          createPublicKey({ key: Buffer.from(key.publicKey), format: 'der', type: 'spki' });
        } catch (error) {
          throw RpcError.invalidArgument(`invalid JWT authority: ${(error as Error).message}`);
        }
        const keys = await deps.ca
          .publishJwtAuthority({
            keyId: key.keyId,
            publicKeySpki: Buffer.from(key.publicKey),
            expiresAt: Number(key.expiresAt),
            tainted: key.tainted,
          })
          .catch((error: unknown) => {
            if (error instanceof RpcError) throw error;
            throw RpcError.internal(`failed to publish JWT key: ${(error as Error).message}`);
          });
        deps.logger.info({ caller_id: callerId, local_authority_id: key.keyId }, 'Published JWT key');
        return {
          jwtAuthorities: keys.map((k) => ({
            publicKey: k.publicKeySpki,
            keyId: k.keyId,
            expiresAt: k.expiresAt,
            tainted: k.tainted,
          })),
        };
      },
    ),
  };
}
