/**
 * The timings of each SPIRE implementation that the TTL model predicts from, in one record per
 * implementation: backdating, the renewal window, the agent's sync backoff, a downstream's reconnect
 * backoff to its upstream, the CA rotation check and the default entry-cache reload. Pure data, so
 * workflows can use it. Seconds throughout.
 *
 * The two records agree where the bundled SPIRE follows SPIRE v1.13.3 to the number; they part where
 * the libraries underneath differ: the bundled servers reconnect with grpc-js, which carries each
 * delay's jitter into the next one, SPIRE with grpc-go, which jitters every delay on its own.
 * test/unit/implementation-timing.test.ts holds the bundled agent and server to their record.
 */
import type { ImplementationName } from '../deployment/topology/topology.js';

export interface SyncBackoff {
  /** Growth of the delay after each failed sync (the first retry waits factor × interval). */
  factor: number;
  /** ± fraction of each delay. */
  jitter: number;
  /** Growth stops at min(maxSeconds, maxIntervals × interval). */
  maxSeconds: number;
  maxIntervals: number;
}

export interface ReconnectBackoff {
  /** The first delay after a failed connection attempt. */
  first: number;
  factor: number;
  /** ± fraction of each delay. */
  jitter: number;
  max: number;
  /**
   * Whether a delay's jitter carries into the next (grpc-js) or each delay is jittered alone (grpc-go).
   * In both the first delay is exact.
   */
  carriesJitter: boolean;
}

export interface ImplementationTiming {
  /** Seconds every certificate's NotBefore is set back. */
  backdate: number;
  /** An SVID is renewed at the first sync once between `least` and `most` of its lifetime remains. */
  renewRemaining: { most: number; least: number };
  sync: SyncBackoff;
  reconnect: ReconnectBackoff;
  /** Seconds between a server's CA rotation checks. */
  caRotationCheck: number;
  /** Seconds between reloads of a server's entry cache when the topology sets none. */
  entryCacheReload: number;
}

const spireAgent = {
  backdate: 10,
  renewRemaining: { most: 0.55, least: 0.45 },
  sync: { factor: 1.5, jitter: 0.1, maxSeconds: 480, maxIntervals: 48 },
  caRotationCheck: 10,
  entryCacheReload: 5,
} as const;

/** gRPC's default connection backoff (gRPC's connection-backoff spec): 1 s, ×1.6, ±20 %, at most 120 s. */
const grpcBackoff = { first: 1, factor: 1.6, jitter: 0.2, max: 120 } as const;

export const IMPLEMENTATION_TIMING: Record<ImplementationName, ImplementationTiming> = {
  tspire: { ...spireAgent, reconnect: { ...grpcBackoff, carriesJitter: true } },
  spire: { ...spireAgent, reconnect: { ...grpcBackoff, carriesJitter: false } },
};

/** The record of `implementation`; plans made before implementations were recorded ran the bundled SPIRE. */
export function timingOf(implementation: ImplementationName | undefined): ImplementationTiming {
  return IMPLEMENTATION_TIMING[implementation ?? 'tspire'];
}
