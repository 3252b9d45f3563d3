import { describe, expect, it } from 'vitest';
import type { ProbeSample, WorkloadOutcome } from '../../scenarios/drill-record.js';
import { evaluateExpectations, type EvaluationInput } from '../../scenarios/expectations.js';

const fault = { start: 100_000, end: 145_000 };
const base = (workloads: WorkloadOutcome[], samples: ProbeSample[] = []): EvaluationInput => ({
  expectations: [],
  workloads,
  samples,
  steady: { start: 90_000, end: 100_000 },
  fault,
  recovery: { start: 145_000, end: 170_000 },
  defaultTolerance: 2,
  authorityAtInjection: { a: 'old' },
});

const workload = (
  predicted: WorkloadOutcome['predicted'],
  gaps: { start: number; end: number }[],
): WorkloadOutcome => ({
  spiffeId: 'a',
  group: 'upstream',
  predicted,
  observed: { gaps, svids: [], handshakes: { ok: 10, failed: 0 }, jwt: { ok: 10, failed: 0 } },
});

describe('expectations', () => {
  const lossPredicted = {
    loss: 'always' as const,
    lossAt: 120_000,
    recoveredBy: { earliest: 145_000, latest: 160_000 },
  };

  it('meets identity-as-predicted when the loss and the recovery fall inside the tolerance', () => {
    const [outcome] = evaluateExpectations({
      ...base([workload(lossPredicted, [{ start: 121_000, end: 150_000 }])]),
      expectations: [{ expect: 'identity-as-predicted' }],
    });
    expect(outcome!.met).toBe(true);
  });

  it('misses it, with the numbers, when the loss comes too early or recovery too late', () => {
    const [early] = evaluateExpectations({
      ...base([workload(lossPredicted, [{ start: 110_000, end: 150_000 }])]),
      expectations: [{ expect: 'identity-as-predicted' }],
    });
    expect(early!.met).toBe(false);
    expect(early!.evidence.join('\n')).toMatch(
      /lost its identity at \+10\.0 s after injection, predicted \+20\.0 s/,
    );
    const late = evaluateExpectations({
      ...base([workload(lossPredicted, [{ start: 120_000, end: 165_000 }])]),
      expectations: [{ expect: 'identity-as-predicted' }, { expect: 'recovers' }],
    });
    expect(late.map((e) => e.met)).toEqual([false, false]);
  });

  it('misses it when a predicted loss never happens, or an unpredicted one does', () => {
    const none = evaluateExpectations({
      ...base([workload(lossPredicted, [])]),
      expectations: [{ expect: 'identity-as-predicted' }],
    });
    expect(none[0]!.met).toBe(false);
    const unpredicted = evaluateExpectations({
      ...base([workload({ loss: 'never' }, [{ start: 130_000, end: 131_000 }])]),
      expectations: [{ expect: 'identity-as-predicted' }, { expect: 'no-identity-loss' }],
    });
    expect(unpredicted.map((e) => e.met)).toEqual([false, false]);
    expect(unpredicted[1]!.evidence[0]).toMatch(/no valid SVID for 1\.0 s/);
  });

  it('counts handshakes per phase and group', () => {
    const samples: ProbeSample[] = [
      { kind: 'handshake', at: 101_000, workload: 'a', peer: 'b', ok: true, latencyMs: 3 },
      { kind: 'handshake', at: 102_000, workload: 'a', peer: 'b', ok: false, latencyMs: 3 },
      { kind: 'handshake', at: 95_000, workload: 'a', peer: 'b', ok: true, latencyMs: 3 },
    ];
    const [fault50, steady] = evaluateExpectations({
      ...base([workload({ loss: 'never' }, [])], samples),
      expectations: [
        { expect: 'handshake-success', phase: 'fault', min: 0.9 },
        { expect: 'handshake-success', phase: 'steady', min: 1 },
      ],
    });
    expect(fault50!.met).toBe(false);
    expect(fault50!.evidence[0]).toBe('1 of 2 handshakes succeeded (50.0 %)');
    expect(steady!.met).toBe(true);
  });

  it('checks the move to a new authority and the refusal of a revoked one', () => {
    const moved = workload({ loss: 'never' }, []);
    moved.observed.svids = [
      { serial: '1', notBefore: 0, notAfter: 1, at: 99_000, authority: 'old' },
      { serial: '2', notBefore: 0, notAfter: 1, at: 108_000, authority: 'new' },
    ];
    const [within, tooSlow, refused] = evaluateExpectations({
      ...base([moved]),
      revokedReplay: { refused: true, detail: 'refused' },
      expectations: [
        { expect: 'new-authority', within: 10 },
        { expect: 'new-authority', within: 5 },
        { expect: 'revoked-svid-refused' },
      ],
    });
    expect([within!.met, tooSlow!.met, refused!.met]).toEqual([true, false, true]);
  });
});
