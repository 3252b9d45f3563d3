/**
 * How the agent bootstraps and when it gives up, as SPIRE's agent: retry_bootstrap, rebootstrap_mode
 * and what an untrusted server root means for a running agent.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { RebootstrapMode } from './agent-config.js';

/** SPIRE retries a failed bootstrap every 5 s (×1.5, ±10 %, at most 24 intervals apart)… */
const BOOTSTRAP_INTERVAL_MS = 5000;
const BOOTSTRAP_MAX_INTERVAL_MS = 24 * BOOTSTRAP_INTERVAL_MS;
/** …for a minute, or a day when the agent may rebootstrap. */
const BOOTSTRAP_GIVE_UP_MS = 60_000;
const REBOOTSTRAP_GIVE_UP_MS = 24 * 3600_000;

const NOT_REATTESTABLE =
  'you have requested rebootstrap support but the NodeAttestor plugin or the spire server configuration is not allowing it';

/**
 * The rebootstrap mode the agent runs with, given whether its stored or new SVID is re-attestable.
 * Rebootstrapping attests again, which join_token (single use) cannot: SPIRE refuses "always" and
 * turns "auto" off.
 */
export function effectiveRebootstrapMode(
  mode: RebootstrapMode,
  reattestable: boolean,
  logger: Logger,
): RebootstrapMode {
  if (mode === 'never' || reattestable) return mode;
  if (mode === 'always') throw new Error(NOT_REATTESTABLE);
  logger.warn(`${NOT_REATTESTABLE}. Disabling`);
  return 'never';
}

/**
 * Runs `attest` until it succeeds: with retry_bootstrap (SPIRE's default) failures are retried with
 * backoff until the give-up time, except a refusal (PermissionDenied), which no retry can change.
 */
export async function attestWithRetry<T>(
  attest: () => Promise<T>,
  options: {
    retry: boolean;
    rebootstrapMode: RebootstrapMode;
    logger: Logger;
    sleep?: (ms: number) => Promise<void>;
    random?: () => number;
    now?: () => number;
  },
): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const giveUpMs = options.rebootstrapMode === 'never' ? BOOTSTRAP_GIVE_UP_MS : REBOOTSTRAP_GIVE_UP_MS;
  const started = now();
  let interval = BOOTSTRAP_INTERVAL_MS;
  for (;;) {
    try {
      return await attest();
    } catch (error) {
      // The roots came from the trust bundle source, which the next attempt reads again.
      if (isUnknownAuthorityError(error))
        options.logger.info('Trust Bandle and Server dont agree.... bootstrapping again');
      if (!options.retry || (error as Partial<grpc.ServiceError>).code === grpc.status.PERMISSION_DENIED)
        throw error;
      const delay = Math.round(interval * (1 + (random() * 2 - 1) * 0.1));
      if (now() - started + delay > giveUpMs) throw error;
      interval = Math.min(interval * 1.5, BOOTSTRAP_MAX_INTERVAL_MS);
      options.logger.warn(
        { err: (error as Error).message, retry_interval: `${delay}ms` },
        'Failed to retrieve attestation result',
      );
      await sleep(delay);
    }
  }
}

/**
 * Whether a call failed because the server's certificate does not chain to a root the agent trusts:
 * grpc-js fails the call UNAVAILABLE with the TLS handshake's OpenSSL verification error in its
 * details. (The server refusing the agent's SVID is UNAUTHENTICATED, and not this.)
 */
export function isUnknownAuthorityError(error: unknown): boolean {
  const e = error as Partial<grpc.ServiceError>;
  return (
    e.code === grpc.status.UNAVAILABLE &&
    /unable to verify the first certificate|unable to get (local )?issuer certificate|self[- ]signed certificate|certificate signature failure/i.test(
      e.details ?? '',
    )
  );
}
