import type { BundleHandlers } from '../proto/services.js';
import type { Bundle } from '../proto/gen/spire/api/types/Bundle.js';
import { bundleToProto } from '../proto/convert.js';
import { RpcError } from '../transport/rpc-error.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { CaManager } from './ca-manager.js';

/** bundle.v1: the trust domain's bundle, tainted flags included, for agents and operators alike. */
export function bundleService(deps: { ca: CaManager; observe: RpcObserver }): Partial<BundleHandlers> {
  return {
    GetBundle: unary('bundle.v1.Bundle', 'GetBundle', deps.observe, async (): Promise<Bundle> => {
      try {
        return bundleToProto(await deps.ca.bundle());
      } catch (error) {
        throw RpcError.internal(`failed to fetch bundle: ${(error as Error).message}`);
      }
    }),
  };
}
