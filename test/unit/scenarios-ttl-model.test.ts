import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../identity-core/agent/backoff.js';
import { renewalTime } from '../../identity-core/agent/renewal-policy.js';
import {
  firstSuccessAfter,
  fullLifetime,
  heldExpiryInSteadyState,
  outageLength,
  outageWithoutLoss,
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
