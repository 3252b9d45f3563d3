/**
 * The TTL model: what an outage of SVID issuance does to a workload's identity, predicted from the
 * lifetimes and the implementation's timings alone (scenarios/implementation-timing.ts, one record per
 * implementation). Pure code (no I/O, no clocks), so workflows can use it. Times are seconds on any
 * common clock.
 *
 * The agent behaviour it encodes (SPIRE's agent, and identity-core/agent):
 * - an SVID issued at t has NotBefore t − backdate and NotAfter min(t + ttl, cap);
 * - it is renewed at the first sync once 45–55 % of its lifetime (NotAfter − NotBefore) remains;
 * - syncs are spaced by SPIRE's backoff, ±10 % jitter on every delay: a regular sync one interval
 *   after the last success, the first retry after a failure 1.5 intervals later, ×1.5 per further
 *   failure, growth capped at min(480 s, 48 × interval).
 *
 * A downstream cut off its upstream (predictCutOffWorkload) signs until its intermediate expires, and
 * gets a new one only once its connection to the upstream is back: SPIRE's UpstreamAuthority plugin
 * keeps one gRPC channel, which reconnects on gRPC's backoff (1 s, ×1.6, ±20 %, at most 120 s), so the
 * reconnect waits for the backoff's next attempt after the upstream returns; the next CA rotation
 * check (every 10 s) then asks for the intermediate.
 *
 * A datastore outage is an issuance outage whatever the server's max_attested_node_info_staleness:
 * in SPIRE v1.13.3 the cached node only spares the datastore read that authorizes an agent call, and
 * every sync also calls GetBundle, which reads the datastore (a 1 s cache, nothing served stale), as
 * does the TLS handshake of each new connection. So the knob does not enter the model.
 */
import { timingOf, type ImplementationTiming, type SyncBackoff } from './implementation-timing.js';

export interface IssuancePolicy {
  /** Seconds: the X509-SVID TTL asked for. */
  ttl: number;
  /** Seconds the server backdates NotBefore (SPIRE: 10). */
  backdate: number;
  /** Seconds between the agent's syncs. */
  syncInterval: number;
  /** NotAfter of the CA that signs (a downstream's intermediate): no SVID outlives it. */
  caNotAfter?: number;
  /** The timings of the SPIRE that serves the workload (its agent, and its servers); absent: the bundled SPIRE's. */
  timing?: ImplementationTiming;
}

export interface Interval {
  earliest: number;
  latest: number;
}

export interface HeldSvid {
  notBefore: number;
  notAfter: number;
}

/** When no SVID can be issued to the workload: the fault's effect on issuance, not the fault itself. */
export interface IssuanceOutage {
  start: number;
  end: number;
}

export type Loss = 'never' | 'always' | 'possibly';

export interface WorkloadPrediction {
  /** Whether the workload is left without a valid SVID at some point. */
  loss: Loss;
  /** When it would lose its identity: the held SVID's NotAfter (when loss is not 'never'). */
  lossAt?: number;
  /** When the first sync after the outage succeeds, renewing whatever is due. */
  firstSuccessAfter: Interval;
  /** When it holds a valid SVID again (when loss is not 'never'). */
  recoveredBy?: Interval;
}

function timing(policy: IssuancePolicy): ImplementationTiming {
  return policy.timing ?? timingOf(undefined);
}

/** The longest delay the agent's sync backoff grows to. */
export function maxBackoff(syncInterval: number, sync: SyncBackoff = timingOf(undefined).sync): number {
  return Math.min(sync.maxSeconds, sync.maxIntervals * syncInterval);
}

/** Lifetime (NotAfter − NotBefore) of an SVID issued at `issuedAt` under `policy`. */
export function lifetimeAt(issuedAt: number, policy: IssuancePolicy): number {
  const notAfter = Math.min(issuedAt + policy.ttl, policy.caNotAfter ?? Infinity);
  return notAfter - (issuedAt - policy.backdate);
}

/** The full lifetime of an uncapped SVID: TTL plus backdating. */
export function fullLifetime(policy: IssuancePolicy): number {
  return policy.ttl + policy.backdate;
}

/**
 * The longest issuance outage that no workload in steady state can notice: its SVID is renewed by the
 * time 45 % of the lifetime remains, plus at most one sync interval of delay.
 */
export function outageWithoutLoss(policy: IssuancePolicy): number {
  const { renewRemaining, sync } = timing(policy);
  return Math.max(0, renewRemaining.least * fullLifetime(policy) - policy.syncInterval * (1 + sync.jitter));
}

/** When the SVID a steady-state workload holds at time `at` expires, at the earliest and the latest. */
export function heldExpiryInSteadyState(at: number, policy: IssuancePolicy): Interval {
  const cap = policy.caNotAfter ?? Infinity;
  return {
    earliest: Math.min(at + outageWithoutLoss(policy), cap),
    latest: Math.min(at + policy.ttl, cap),
  };
}

/**
 * Bounds on the first successful sync after an outage [start, end): the agent's attempts start failing
 * at its first sync after `start` and back off; the first attempt at or after `end` succeeds. It may
 * land right at `end`, or up to one full backoff delay later.
 */
export function firstSuccessAfter(
  outage: IssuanceOutage,
  syncInterval: number,
  sync: SyncBackoff = timingOf(undefined).sync,
): Interval {
  const { factor, jitter } = sync;
  // No outage: the next regular sync, within one jittered interval.
  const regular = syncInterval * (1 + jitter);
  if (outage.end <= outage.start) return { earliest: outage.end, latest: outage.end + regular };
  const cap = maxBackoff(syncInterval, sync);
  // The most failures that fit before `end` (the first at `start`, shortest jittered delays) give the
  // longest delay in effect when the outage ends; the first retry waits `factor` intervals.
  let t = outage.start;
  let delay = Math.min(syncInterval * factor, cap);
  let longest = regular;
  while (t < outage.end) {
    longest = delay * (1 + jitter);
    t += delay * (1 - jitter);
    delay = Math.min(delay * factor, cap);
  }
  return { earliest: outage.end, latest: outage.end + longest };
}

/**
 * What an issuance outage does to a workload that holds `held` when it starts. The workload keeps its
 * SVID until NotAfter; it loses its identity if that comes before the first successful sync after the
 * outage, and has a new SVID from that sync on (a renewal is due by then, since it expired).
 */
export function predictWorkload(
  held: HeldSvid,
  outage: IssuanceOutage,
  policy: IssuancePolicy,
): WorkloadPrediction {
  const success = firstSuccessAfter(outage, policy.syncInterval, timing(policy).sync);
  // Still valid when the first sync after the outage has certainly succeeded: unnoticed.
  if (held.notAfter >= success.latest) return { loss: 'never', firstSuccessAfter: success };
  const recoveredBy = { earliest: Math.max(success.earliest, held.notAfter), latest: success.latest };
  if (held.notAfter <= outage.end)
    return { loss: 'always', lossAt: held.notAfter, firstSuccessAfter: success, recoveredBy };
  return { loss: 'possibly', lossAt: held.notAfter, firstSuccessAfter: success, recoveredBy };
}

/**
 * Bounds on when a downstream cut off its upstream over [start, end) has a new intermediate, if it
 * needs one. Its connection attempts fail from `start` on (at the earliest: the most attempts fit
 * before `end`, with the shortest delays); the first attempt at or after `end` connects, at most the
 * longest delay that can be in effect then; the next rotation check follows within one interval.
 */
export function downstreamResumesBy(
  cut: IssuanceOutage,
  { reconnect, caRotationCheck }: ImplementationTiming = timingOf(undefined),
): Interval {
  if (cut.end <= cut.start) return { earliest: cut.end, latest: cut.end + caRotationCheck };
  const { first, factor, jitter, max, carriesJitter } = reconnect;
  let t = cut.start;
  let shortest = first;
  let longest = first;
  // Each delay unjittered, for grpc-go's backoff, which jitters every delay on its own.
  let nominal = first;
  while (t < cut.end) {
    t += shortest;
    nominal = Math.min(nominal * factor, max);
    const next = carriesJitter
      ? {
          shortest: Math.min(shortest * factor, max) * (1 - jitter),
          longest: Math.min(longest * factor, max) * (1 + jitter),
        }
      : { shortest: nominal * (1 - jitter), longest: nominal * (1 + jitter) };
    shortest = next.shortest;
    if (t < cut.end) longest = next.longest;
  }
  return { earliest: cut.end, latest: cut.end + longest + caRotationCheck };
}

/**
 * What a cut off downstream's intermediate (NotAfter `policy.caNotAfter`) does to a workload under it
 * that holds `held` when the cut begins: issuance stops when the intermediate expires, if that comes
 * before the downstream has a new one (downstreamResumesBy), and resumes with it.
 */
export function predictCutOffWorkload(
  held: HeldSvid,
  cut: IssuanceOutage,
  policy: IssuancePolicy & { caNotAfter: number },
): WorkloadPrediction {
  const resumes = downstreamResumesBy(cut, timing(policy));
  const stop = Math.max(cut.start, policy.caNotAfter);
  // Issuance never stops: the agent's syncs go on as usual.
  if (stop >= resumes.latest)
    return {
      loss: 'never',
      firstSuccessAfter: firstSuccessAfter(
        { start: cut.end, end: cut.end },
        policy.syncInterval,
        timing(policy).sync,
      ),
    };
  const latest = predictWorkload(held, { start: stop, end: Math.max(stop, resumes.latest) }, policy);
  if (latest.loss === 'never') return latest;
  const earliest = firstSuccessAfter(
    { start: stop, end: Math.max(stop, resumes.earliest) },
    policy.syncInterval,
    timing(policy).sync,
  );
  return {
    loss: held.notAfter <= resumes.earliest ? 'always' : 'possibly',
    lossAt: held.notAfter,
    firstSuccessAfter: { earliest: earliest.earliest, latest: latest.firstSuccessAfter.latest },
    recoveredBy: {
      earliest: Math.max(earliest.earliest, held.notAfter),
      latest: latest.recoveredBy!.latest,
    },
  };
}

/**
 * The longest whole-second outage no steady-state workload can notice, backoff included: even the
 * SVID closest to its renewal outlives the first successful sync after the outage.
 */
export function longestUnnoticedOutage(policy: IssuancePolicy): number {
  const budget = outageWithoutLoss(policy);
  let seconds = Math.floor(budget);
  const { sync } = timing(policy);
  while (
    seconds > 0 &&
    firstSuccessAfter({ start: 0, end: seconds }, policy.syncInterval, sync).latest > budget
  )
    seconds--;
  return seconds;
}

/** The scenario outage classes, as fractions of the full SVID lifetime. */
export type OutageClass = 'short' | 'medium' | 'long';

/**
 * A representative outage length for a class: short < 0.45 L, medium between 0.5 L and L, long > L.
 * Long is 1.25 L: a held SVID has at most its TTL (< L) left, so every SVID expires a quarter of a
 * lifetime before the heal, and a suite spends no longer in holds than that needs.
 */
export function outageLength(outageClass: OutageClass, policy: IssuancePolicy): number {
  const lifetime = fullLifetime(policy);
  switch (outageClass) {
    case 'short':
      return Math.max(1, Math.min(Math.floor(0.3 * lifetime), longestUnnoticedOutage(policy)));
    case 'medium':
      return Math.round(0.75 * lifetime);
    case 'long':
      return Math.round(1.25 * lifetime);
  }
}
