import type { Logger } from 'pino';
import type { HealthHandlers } from '../proto/services.js';
import type { HealthCheckRequest__Output } from '../proto/gen/grpc/health/v1/HealthCheckRequest.js';
import type { HealthCheckResponse } from '../proto/gen/grpc/health/v1/HealthCheckResponse.js';
import { RpcError } from '../transport/rpc-error.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';

/**
 * grpc.health.v1 on the admin socket, which `tspire-server healthcheck` asks. As SPIRE's, it answers
 * whether the trust domain's bundle can be read from the datastore, nothing more: a downstream whose
 * intermediate has expired still serves (the HTTP ready and live checks say it cannot sign).
 */
export function healthService(deps: {
  /** Why the bundle cannot be had from the datastore, or undefined when it can. */
  bundleProblem: () => Promise<string | undefined>;
  logger: Logger;
  observe: RpcObserver;
}): Partial<HealthHandlers> {
  return {
    Check: unary(
      'grpc.health.v1.Health',
      'Check',
      deps.observe,
      async (request: HealthCheckRequest__Output): Promise<HealthCheckResponse> => {
        if (request.service !== '') throw RpcError.invalidArgument('per-service health is not supported');
        const reason = await deps.bundleProblem();
        if (reason === undefined) return { status: 'SERVING' };
        deps.logger.warn({ reason }, 'Health check failed');
        return { status: 'NOT_SERVING' };
      },
    ),
  };
}
