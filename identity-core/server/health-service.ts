import type { HealthHandlers } from '../proto/services.js';
import type { HealthCheckResponse } from '../proto/gen/grpc/health/v1/HealthCheckResponse.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';

/** grpc.health.v1 on the admin socket, which `tspire-server healthcheck` asks. */
export function healthService(deps: {
  ready: () => Promise<boolean>;
  observe: RpcObserver;
}): Partial<HealthHandlers> {
  return {
    Check: unary('grpc.health.v1.Health', 'Check', deps.observe, async (): Promise<HealthCheckResponse> => ({
      status: (await deps.ready()) ? 'SERVING' : 'NOT_SERVING',
    })),
  };
}
