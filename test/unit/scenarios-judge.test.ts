import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DrillPolicy, PlannedWorkload } from '../../scenarios/drill-plan.js';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';
import type { TimeWindow } from '../../scenarios/drill-record.js';
import { judgeDrill, steadyProblems, stopConditionHolds, unrecovered } from '../../scenarios/judge.js';
import type { Expectation } from '../../scenarios/scenario.js';
import { FAILED_RUN, GAP_WORKLOAD, PASSED_RUN, sampleSuite } from '../support/sample-suite.js';

const policy: DrillPolicy = { x509Ttl: 20, syncInterval: 5, backdate: 10 };
const plan = (workloads: PlannedWorkload[]) => ({ workloads, policy, tolerance: 6 });
const planned = (spiffeId: string, effect: PlannedWorkload['effect'] = 'none', group = 'upstream') => ({
  spiffeId,
  group,
  effect,
});

const svid = (workload: string, at: number, ttlMs = 20_000): ProbeSample => ({
  kind: 'svid',
  at,
  workload,
  serial: `${workload}-${at}`,
  notBefore: at - 10_000,
  notAfter: at + ttlMs,
  authority: 'aa11',
});
const handshake = (workload: string, at: number, ok = true): ProbeSample => ({
  kind: 'handshake',
  at,
  workload,
  peer: 'spiffe://t/peer',
  ok,
  latencyMs: 2,
});
/** A handshake every second over [from, to), failed where `failing` says. */
const handshakes = (workload: string, from: number, to: number, failing = (_at: number) => false) => {
  const out: ProbeSample[] = [];
  for (let at = from; at < to; at += 1000) out.push(handshake(workload, at, !failing(at)));
  return out;
};

describe('the judge, on recorded samples', () => {
  const { suite, samples } = sampleSuite();
  const record = (runId: string) => suite.drills.find((d) => d.runId === runId)!;
  const judgeRecorded = (runId: string, expectations: Expectation[]) => {
    const r = record(runId);
    return judgeDrill({
      samples: samples[runId]!,
      expectations,
      plan: plan(r.workloads.map((w) => planned(w.spiffeId, 'none', w.group))),
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      windows: { steady: r.steady!, fault: r.fault!, recovery: r.recovery! },
    });
  };
  const expectations: Expectation[] = [
    { expect: 'no-identity-loss' },
    { expect: 'handshake-success', phase: 'steady', min: 1 },
  ];

  it('passes the drill in which every workload renewed through the outage', () => {
    const judged = judgeRecorded(PASSED_RUN, expectations);
    expect(judged.verdict).toBe('passed');
    expect(judged.reason).toBe('2 expectation(s) met');
    expect(judged.expectations.map((e) => e.met)).toEqual([true, true]);
  });

  it('fails the drill in which two workloads lost their identity, with the first one as evidence', () => {
    const judged = judgeRecorded(FAILED_RUN, expectations);
    expect(judged.verdict).toBe('failed');
    expect(judged.reason).toBe(
      `no workload loses its identity: ${GAP_WORKLOAD}: no valid SVID for 37.0 s (model: never loss)`,
    );
    expect(judged.expectations[0]!.evidence).toHaveLength(2);
    // The judge observes the gap the recorded drill reports (its other east workload holds no SVID
    // before +2 s, which the hand-built record leaves out).
    const gaps = (workloads: { spiffeId: string; observed: { gaps: TimeWindow[] } }[]) =>
      workloads.find((w) => w.spiffeId === GAP_WORKLOAD)!.observed.gaps;
    expect(gaps(judged.workloads)).toEqual(gaps(record(FAILED_RUN).workloads));
  });

  it('trips the unpredicted-identity-loss stop condition in the failed drill, not in the passed one', () => {
    const stop = (runId: string) => {
      const r = record(runId);
      return stopConditionHolds({
        samples: samples[runId]!,
        conditions: [{ stop: 'unpredicted-identity-loss' }],
        plan: plan(r.workloads.map((w) => planned(w.spiffeId, 'none', w.group))),
        since: r.fault!.start,
        now: r.fault!.end,
      });
    };
    expect(stop(PASSED_RUN)).toBeUndefined();
    expect(stop(FAILED_RUN)).toBe(
      `${GAP_WORKLOAD} lost its identity for 35.0 s, which the model does not predict`,
    );
  });
});

describe('the judge, on generated samples', () => {
  const a = 'spiffe://t/a';
  const b = 'spiffe://t/b';
  const steady = { start: 100_000, end: 110_000 };
  const fault = { start: 110_000, end: 130_000 };
  const recovery = { start: 130_000, end: 150_000 };

  it('finds the steady-state problems of each workload, in words', () => {
    const window = { start: 100_000, end: 110_000 };
    const clean = [svid(a, 95_000), ...handshakes(a, 100_000, 110_000)];
    expect(steadyProblems(clean, [a], window)).toEqual([]);
    expect(steadyProblems(clean, [a, b], window)).toEqual([`${b}: no SVID yet`]);
    const failing = [svid(a, 95_000), ...handshakes(a, 100_000, 110_000, (at) => at === 104_000)];
    expect(steadyProblems(failing, [a], window)).toEqual([`${a}: 1 failed handshake(s)`]);
    // Its SVID lapses at +5 s and the next comes at +8 s.
    const gap = [svid(a, 85_000), svid(a, 108_000), ...handshakes(a, 100_000, 110_000)];
    expect(steadyProblems(gap, [a], window)).toEqual([`${a}: without a valid SVID for a while`]);
    expect(steadyProblems([svid(a, 95_000)], [a], window)).toEqual([`${a}: no successful handshake`]);
  });

  it('trips handshake-failures on the last 10 s only, once there are enough handshakes to make a rate', () => {
    const holds = (samples: ProbeSample[], groups?: string[]) =>
      stopConditionHolds({
        samples,
        conditions: [{ stop: 'handshake-failures', max: 0.5, ...(groups ? { groups } : {}) }],
        plan: plan([planned(a), planned(b, 'none', 'east')]),
        since: 110_000,
        now: 130_000,
      });
    // 6 of the 10 handshakes in (120 s, 130 s] fail; the ones before do not count.
    const recent = handshakes(a, 110_001, 130_001, (at) => at > 124_000);
    expect(holds(recent)).toBe('6 of 10 handshakes failed in the last 10 s (limit 50 %)');
    expect(holds(recent, ['east'])).toBeUndefined();
    expect(holds(handshakes(a, 110_001, 130_001, (at) => at > 125_000))).toBeUndefined();
    expect(holds(handshakes(a, 126_001, 130_001, () => true))).toBeUndefined();
  });

  it('trips unpredicted-identity-loss only for a workload the model says keeps its identity', () => {
    // A 15 s gap from +5 s: longer than the 6 s tolerance.
    const samples = [svid(a, 105_000, 10_000), svid(a, 130_000), svid(b, 105_000, 10_000), svid(b, 130_000)];
    const holds = (workloads: PlannedWorkload[]) =>
      stopConditionHolds({
        samples,
        conditions: [{ stop: 'unpredicted-identity-loss' }],
        plan: plan(workloads),
        since: 110_000,
        now: 135_000,
      });
    expect(holds([planned(a, 'issuance'), planned(b)])).toBe(
      `${b} lost its identity for 15.0 s, which the model does not predict`,
    );
    expect(holds([planned(a, 'issuance')])).toBeUndefined();
  });

  it('tells who has not recovered: no valid SVID, or no handshake since healing', () => {
    const samples = [
      svid(a, 131_000),
      handshake(a, 132_000),
      svid(b, 131_000),
      handshake(b, 129_000),
      handshake(b, 132_000, false),
    ];
    const workloads = [planned(a), planned(b)];
    expect(unrecovered(samples, workloads, 130_000, 140_000).map((w) => w.spiffeId)).toEqual([b]);
    // a's SVID has lapsed by +25 s.
    expect(unrecovered(samples, [planned(a)], 130_000, 151_000)).toHaveLength(1);
  });

  it('lets a verdict forced by the workflow stand over the expectations, and errs when recovery was never reached', () => {
    const samples = [svid(a, 95_000), svid(a, 105_000), svid(a, 120_000), svid(a, 135_000)];
    const input = {
      samples,
      expectations: [{ expect: 'no-identity-loss' }] satisfies Expectation[],
      plan: plan([planned(a)]),
      startedAt: 95_000,
      finishedAt: 150_000,
    };
    const met = judgeDrill({ ...input, windows: { steady, fault, recovery } });
    expect(met.verdict).toBe('passed');
    const aborted = judgeDrill({
      ...input,
      windows: { steady, fault, recovery },
      forced: { verdict: 'aborted', reason: 'stop condition: x' },
    });
    expect(aborted).toMatchObject({ verdict: 'aborted', reason: 'stop condition: x' });
    expect(aborted.expectations).toEqual(met.expectations);
    const unhealed = judgeDrill({ ...input, windows: { steady, fault } });
    expect(unhealed).toMatchObject({
      verdict: 'errored',
      reason: 'the drill ended before its fault was held',
      expectations: [],
    });
    expect(unhealed.workloads.map((w) => w.spiffeId)).toEqual([a]);
    const errored = judgeDrill({
      ...input,
      windows: { steady },
      forced: { verdict: 'errored', reason: 'the fault did not take effect: lb up' },
    });
    expect(errored).toMatchObject({ verdict: 'errored', reason: 'the fault did not take effect: lb up' });
  });

  /** SVIDs renewed before each expires, from before `from` to after `to`. */
  const renewing = (workload: string, from: number, to: number, ttlMs: number, fractions: number[]) => {
    const samples: ProbeSample[] = [];
    let at = from - ttlMs / 2;
    let i = 0;
    while (at <= to) {
      samples.push(svid(workload, at, ttlMs));
      at += Math.max(1, Math.floor(ttlMs * fractions[i++ % fractions.length]!));
    }
    return samples;
  };

  it('never reports a workload whose SVIDs never lapse as losing its identity', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2_000, max: 60_000 }),
        fc.array(fc.double({ min: 0.05, max: 0.99, noNaN: true }), { minLength: 1, maxLength: 8 }),
        fc.constantFrom<PlannedWorkload['effect']>('none', 'issuance'),
        (ttlMs, fractions, effect) => {
          const samples = [
            ...renewing(a, steady.start, recovery.end, ttlMs, fractions),
            ...handshakes(a, steady.start, recovery.end),
          ];
          const stop = stopConditionHolds({
            samples,
            conditions: [{ stop: 'unpredicted-identity-loss' }],
            plan: plan([planned(a, effect)]),
            since: fault.start,
            now: recovery.end,
          });
          const judged = judgeDrill({
            samples,
            expectations: [{ expect: 'no-identity-loss' }],
            plan: plan([planned(a, effect)]),
            startedAt: steady.start,
            finishedAt: recovery.end,
            windows: { steady, fault, recovery },
          });
          return (
            stop === undefined &&
            judged.verdict === 'passed' &&
            judged.workloads[0]!.observed.gaps.length === 0
          );
        },
      ),
    );
  });

  const anyExpectation: fc.Arbitrary<Expectation> = fc.oneof(
    fc.constant<Expectation>({ expect: 'no-identity-loss' }),
    fc.constant<Expectation>({ expect: 'identity-as-predicted' }),
    fc.constant<Expectation>({ expect: 'recovers' }),
    fc.record({
      expect: fc.constant('handshake-success' as const),
      phase: fc.constantFrom('steady' as const, 'fault' as const, 'recovery' as const),
      min: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  );

  it('fails a drill exactly when some expectation is unmet, on the first one missed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 80_000, max: 150_000 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.integer({ min: 100_000, max: 149_999 }), fc.boolean()), { maxLength: 30 }),
        fc.array(anyExpectation, { minLength: 1, maxLength: 5 }),
        fc.constantFrom<PlannedWorkload['effect']>('none', 'issuance'),
        (issued, shakes, expectations, effect) => {
          const samples = [
            ...issued.map((at) => svid(a, at)),
            ...shakes.map(([at, ok]) => handshake(a, at, ok)),
          ];
          const judged = judgeDrill({
            samples,
            expectations,
            plan: plan([planned(a, effect)]),
            startedAt: steady.start,
            finishedAt: recovery.end,
            windows: { steady, fault, recovery },
          });
          const missed = judged.expectations.find((e) => !e.met);
          expect(judged.expectations).toHaveLength(expectations.length);
          expect(judged.verdict).toBe(missed ? 'failed' : 'passed');
          if (missed) expect(judged.reason.startsWith(`${missed.name}: `)).toBe(true);
        },
      ),
    );
  });
});
