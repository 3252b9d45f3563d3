import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../identity-core/agent/backoff.js';
import { renewalTime } from '../../identity-core/agent/renewal-policy.js';
import { IMPLEMENTATION_TIMING } from '../../scenarios/implementation-timing.js';
import {
  downstreamResumesBy,
  firstSuccessAfter,
  fullLifetime,
  heldExpiryInSteadyState,
  outageLength,
  outageWithoutLoss,
  predictCutOffWorkload,
  predictWorkload,
  type IssuancePolicy,
} from '../../scenarios/ttl-model.js';

interface Simulated {
  /** The SVID held when the outage starts. */
  held: { notBefore: number; notAfter: number };
  lostAt?: number;
  recoveredAt?: number;
  firstSuccessAfterEnd: number;
}

/**
 * One workload under the agent's real timing code (Backoff, renewalTime, with seeded randomness):
 * it syncs, renews when due, backs off while issuance fails in [start, end), and records what happened.
 */
function simulate(
  policy: IssuancePolicy,
  outage: { start: number; end: number },
  firstIssue: number,
  syncPhase: number,
  random: () => number,
): Simulated {
  const backoff = new Backoff(policy.syncInterval * 1000, random);
  const issue = (t: number) => {
    const notBefore = t - policy.backdate;
    const notAfter = Math.min(t + policy.ttl, policy.caNotAfter ?? Infinity);
    return { notBefore, notAfter, renewAt: renewalTime(notBefore, notAfter, random) };
  };
  let svid = issue(firstIssue);
  let held: Simulated['held'] | undefined;
  let lostAt: number | undefined;
  let recoveredAt: number | undefined;
  let firstSuccessAfterEnd: number | undefined;
  let t = firstIssue + syncPhase;
  while (firstSuccessAfterEnd === undefined || t < outage.end + 10 * policy.syncInterval) {
    if (held === undefined && t >= outage.start)
      held = { notBefore: svid.notBefore, notAfter: svid.notAfter };
    const failing = t >= outage.start && t < outage.end;
    if (failing) {
      t += backoff.next() / 1000;
      continue;
    }
    if (t >= outage.end && firstSuccessAfterEnd === undefined) firstSuccessAfterEnd = t;
    if (t >= svid.renewAt) {
      if (t > svid.notAfter && lostAt === undefined) {
        lostAt = svid.notAfter;
        recoveredAt = t;
      }
      svid = issue(t);
    }
    backoff.reset();
    t += backoff.next() / 1000;
  }
  return {
    held: held!,
    ...(lostAt !== undefined ? { lostAt, recoveredAt: recoveredAt! } : {}),
    firstSuccessAfterEnd: firstSuccessAfterEnd!,
  };
}

function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
}

/** Policies under which renewal can work at all: a sync comes well within the renewal window. */
const policies = fc.integer({ min: 20, max: 3600 }).chain((ttl) =>
  fc.record({
    ttl: fc.constant(ttl),
    backdate: fc.constant(10),
    syncInterval: fc.integer({ min: 1, max: Math.min(30, Math.floor(0.4 * (ttl + 10))) }),
  }),
);

describe('TTL model', () => {
  it('contains what the agent timing code actually does, for any policy and outage', () => {
    fc.assert(
      fc.property(
        policies,
        fc.double({ min: 0, max: 3, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer(),
        (policy, outageFraction, issueFraction, phaseFraction, seed) => {
          const lifetime = fullLifetime(policy);
          // Start in steady state: a few lifetimes of renewals before the outage.
          const start = 5 * lifetime;
          const outage = { start, end: start + outageFraction * lifetime };
          const sim = simulate(
            policy,
            outage,
            issueFraction * lifetime,
            phaseFraction * policy.syncInterval,
            seeded(seed),
          );
          const prediction = predictWorkload(sim.held, outage, policy);
          expect(sim.firstSuccessAfterEnd).toBeGreaterThanOrEqual(prediction.firstSuccessAfter.earliest);
          expect(sim.firstSuccessAfterEnd).toBeLessThanOrEqual(prediction.firstSuccessAfter.latest + 1e-6);
          if (sim.lostAt !== undefined) {
            expect(sim.lostAt, 'no loss in steady state before the outage').toBeGreaterThanOrEqual(start);
            expect(prediction.loss).not.toBe('never');
            expect(prediction.lossAt).toBe(sim.lostAt);
            expect(sim.recoveredAt!).toBeGreaterThanOrEqual(prediction.recoveredBy!.earliest);
            expect(sim.recoveredAt!).toBeLessThanOrEqual(prediction.recoveredBy!.latest + 1e-6);
          } else {
            expect(prediction.loss).not.toBe('always');
          }
          // The held SVID is within the steady-state bounds the dry run predicts.
          const bounds = heldExpiryInSteadyState(start, policy);
          expect(sim.held.notAfter).toBeGreaterThanOrEqual(bounds.earliest - 1e-6);
          expect(sim.held.notAfter).toBeLessThanOrEqual(bounds.latest + 1e-6);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never predicts a loss for an outage shorter than the no-loss limit, always for one longer than the TTL', () => {
    fc.assert(
      fc.property(policies, fc.double({ min: 0, max: 1, noNaN: true }), (policy, where) => {
        const start = 1000;
        const bounds = heldExpiryInSteadyState(start, policy);
        const notAfter = bounds.earliest + where * (bounds.latest - bounds.earliest);
        const held = { notBefore: notAfter - fullLifetime(policy), notAfter };
        const short = { start, end: start + outageWithoutLoss(policy) - policy.syncInterval * 1.1 };
        if (short.end > start) expect(predictWorkload(held, short, policy).loss).not.toBe('always');
        const long = { start, end: start + policy.ttl + 1 };
        expect(predictWorkload(held, long, policy).loss).toBe('always');
      }),
    );
  });

  it('grows no less likely to lose identity as the outage grows', () => {
    const rank = { never: 0, possibly: 1, always: 2 };
    fc.assert(
      fc.property(
        policies,
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.double({ min: 0, max: 2, noNaN: true }),
        (policy, a, b) => {
          const lifetime = fullLifetime(policy);
          const held = { notBefore: 0, notAfter: lifetime };
          const at = (fraction: number) =>
            rank[
              predictWorkload(held, { start: lifetime / 2, end: lifetime / 2 + fraction * lifetime }, policy)
                .loss
            ];
          expect(at(Math.max(a, b))).toBeGreaterThanOrEqual(at(Math.min(a, b)));
        },
      ),
    );
  });

  it('caps at the intermediate: SVIDs of a downstream expire with its CA', () => {
    const policy: IssuancePolicy = { ttl: 60, backdate: 10, syncInterval: 5, caNotAfter: 1030 };
    expect(heldExpiryInSteadyState(1000, policy)).toEqual({ earliest: 1026, latest: 1030 });
    // Upstream away until long after the intermediate's end: every workload loses identity at 1030.
    const prediction = predictWorkload(
      { notBefore: 990, notAfter: 1030 },
      { start: 1030, end: 1100 },
      policy,
    );
    expect(prediction).toMatchObject({ loss: 'always', lossAt: 1030 });
    expect(prediction.recoveredBy!.earliest).toBe(1100);
  });

  /**
   * gRPC's reconnect attempts from `first` on, as grpc-go draws each delay (1.6^n ±20 %, at most 120 s)
   * or as grpc-js does (the previous delay ×1.6, capped, then ±20 %): the first attempt at or after
   * `end`, which connects.
   */
  function reconnectAt(first: number, end: number, compounding: boolean, random: () => number): number {
    let t = first;
    let delay = 1;
    for (let n = 1; t < end; n++) {
      t += delay;
      const nominal = compounding ? Math.min(delay * 1.6, 120) : Math.min(1.6 ** n, 120);
      delay = nominal * (1 + 0.2 * (random() * 2 - 1));
    }
    return t;
  }

  it("bounds a cut off downstream's reconnect by its gRPC's backoff, then one rotation check", () => {
    const { tspire, spire } = IMPLEMENTATION_TIMING;
    const check = tspire.caRotationCheck;
    expect(spire.caRotationCheck).toBe(check);
    // Attempts no earlier than 0, 1, 2.28: the one in effect at 3 s waits at most 1.92 × 1.6 × 1.2 s
    // with grpc-js (the jitter carried), 1.6² × 1.2 s with grpc-go.
    expect(downstreamResumesBy({ start: 0, end: 3 }, tspire).latest).toBeCloseTo(
      3 + 1.92 * 1.6 * 1.2 + check,
    );
    expect(downstreamResumesBy({ start: 0, end: 3 }, spire).latest).toBeCloseTo(3 + 2.56 * 1.2 + check);
    // A 4-minute cut: the delay can have reached its cap, 120 s + 20 %, in either.
    for (const timing of [tspire, spire])
      expect(downstreamResumesBy({ start: 0, end: 240 }, timing)).toEqual({
        earliest: 240,
        latest: 240 + 144 + check,
      });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 900 }),
        fc.double({ min: 0, max: 5, noNaN: true }),
        fc.boolean(),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1 }),
        (cut, firstFailure, compounding, draws) => {
          let i = 0;
          const random = () => draws[i++ % draws.length]!;
          const bound = downstreamResumesBy({ start: 0, end: cut }, compounding ? tspire : spire);
          const reconnect = reconnectAt(Math.min(firstFailure, cut), cut, compounding, random);
          expect(reconnect).toBeGreaterThanOrEqual(bound.earliest);
          expect(reconnect + check).toBeLessThanOrEqual(bound.latest + 1e-9);
        },
      ),
    );
    // grpc-go's bound is the tighter: its delays do not compound their jitter.
    const minutes = downstreamResumesBy({ start: 0, end: 60 }, spire).latest;
    expect(minutes).toBeLessThan(downstreamResumesBy({ start: 0, end: 60 }, tspire).latest);
  });

  it('a downstream whose intermediate expires while it is cut off signs again only after it reconnects', () => {
    const policy = { ttl: 60, backdate: 10, syncInterval: 5, caNotAfter: 1030 };
    const cut = { start: 1000, end: 1100 };
    const prediction = predictCutOffWorkload({ notBefore: 990, notAfter: 1030 }, cut, policy);
    expect(prediction).toMatchObject({ loss: 'always', lossAt: 1030 });
    expect(prediction.recoveredBy!.earliest).toBe(1100);
    // The reconnect can wait the backoff in effect after ~100 s of failed attempts, then a check;
    // the agent, failing since 1030, renews at its first sync after that.
    const resumes = downstreamResumesBy(cut).latest;
    expect(prediction.recoveredBy!.latest).toBe(firstSuccessAfter({ start: 1030, end: resumes }, 5).latest);
    // An intermediate that outlives the reconnect, the check and the agent's next sync: nothing noticed.
    const lasting = { ...policy, caNotAfter: downstreamResumesBy(cut).latest + 6 };
    expect(predictCutOffWorkload({ notBefore: 1070, notAfter: 1130 }, cut, lasting).loss).toBe('never');
    // One that expires just after the upstream returns: lost maybe, recovered by the same bound.
    const close = { ...policy, caNotAfter: 1105 };
    const maybe = predictCutOffWorkload({ notBefore: 1050, notAfter: 1105 }, cut, close);
    expect(maybe).toMatchObject({ loss: 'possibly', lossAt: 1105 });
    expect(maybe.recoveredBy!.earliest).toBe(1105);
  });

  it('bounds the first success after an outage by the backoff in effect, grown to at most 8 minutes', () => {
    expect(firstSuccessAfter({ start: 0, end: 0 }, 5)).toEqual({ earliest: 0, latest: 5.5 });
    // SPIRE's first retry after a failure waits 1.5 intervals, jittered.
    const short = firstSuccessAfter({ start: 0, end: 3 }, 5);
    expect(short.latest).toBeCloseTo(3 + 7.5 * 1.1);
    const day = firstSuccessAfter({ start: 0, end: 86_400 }, 30);
    expect(day.latest).toBeCloseTo(86_400 + 480 * 1.1);
  });

  it('maps outage classes onto the lifetime', () => {
    const policy: IssuancePolicy = { ttl: 30, backdate: 10, syncInterval: 2 };
    expect(fullLifetime(policy)).toBe(40);
    expect(outageLength('short', policy)).toBeLessThan(0.45 * 40);
    expect(outageLength('short', policy)).toBeLessThanOrEqual(outageWithoutLoss(policy));
    expect(outageLength('medium', policy)).toBe(30);
    expect(outageLength('long', policy)).toBe(50);
  });

  it('picks a short outage that no steady-state workload can notice, backoff included', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 3600 }),
        fc.integer({ min: 1, max: 10 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (ttl, syncInterval, phase) => {
          const policy: IssuancePolicy = { ttl, backdate: 10, syncInterval };
          fc.pre(syncInterval < 0.45 * fullLifetime(policy) - 1);
          const seconds = outageLength('short', policy);
          const start = 1000;
          const expiry = heldExpiryInSteadyState(start, policy);
          const notAfter = expiry.earliest + phase * (expiry.latest - expiry.earliest);
          const held = { notBefore: notAfter - fullLifetime(policy), notAfter };
          expect(seconds).toBeLessThan(0.45 * fullLifetime(policy));
          if (seconds > 1)
            expect(predictWorkload(held, { start, end: start + seconds }, policy).loss).toBe('never');
        },
      ),
      { numRuns: 500 },
    );
  });
});
