import { describe, expect, it } from 'vitest';
import type { WorkloadOutcome } from '../../scenarios/drill-record.js';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';
import {
  evaluateExpectations,
  watchAfterHealSeconds,
  type EvaluationInput,
} from '../../scenarios/expectations.js';

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

  it('checks that identities registered after the backup are offered before the loss and gone soon after the restore', () => {
    const offered = (at: number, spiffeIds: string[]): ProbeSample => ({
      kind: 'identities',
      at,
      workload: 'a',
      spiffeIds,
    });
    const later = [{ spiffeId: 'a/after-backup', workload: 'a' }];
    const check = (samples: ProbeSample[], within?: number) =>
      evaluateExpectations({
        ...base([workload({ loss: 'never' }, [])], samples),
        expectations: [{ expect: 'restore-drops-later-registrations', ...(within ? { within } : {}) }],
        laterRegistrations: later,
      })[0]!;
    const dropped = check([
      offered(80_000, ['a']),
      offered(95_000, ['a', 'a/after-backup']),
      offered(151_000, ['a']),
    ]);
    expect(dropped.met).toBe(true);
    expect(dropped.evidence).toEqual([
      'a: offered a/after-backup from 5.0 s before the loss; gone +6.0 s after the restore',
    ]);
    // Default bound: 5 s of entry cache reload plus twice the 2 s tolerance.
    const slow = check([offered(95_000, ['a', 'a/after-backup']), offered(155_000, ['a'])]);
    expect(slow.met).toBe(false);
    expect(slow.evidence[0]).toMatch(
      /still offered a\/after-backup until \+10\.0 s after the restore, expected gone within 9\.0 s/,
    );
    expect(check([offered(95_000, ['a', 'a/after-backup']), offered(155_000, ['a'])], 12).met).toBe(true);
    // The topology's spire.server.cache_reload_interval replaces SPIRE's default 5 s in that bound.
    const reloadingSlowly = evaluateExpectations({
      ...base(
        [workload({ loss: 'never' }, [])],
        [offered(95_000, ['a', 'a/after-backup']), offered(155_000, ['a'])],
      ),
      expectations: [{ expect: 'restore-drops-later-registrations' }],
      laterRegistrations: later,
      entryCacheReload: 8,
    })[0]!;
    expect(reloadingSlowly.met).toBe(true);
    expect(reloadingSlowly.name).toMatch(/gone within 12\.0 s of the restore/);
    const kept = check([offered(95_000, ['a', 'a/after-backup'])]);
    expect(kept.evidence[0]).toMatch(/still offered a\/after-backup when the drill ended/);
    const never = check([offered(95_000, ['a']), offered(151_000, ['a'])]);
    expect(never.evidence[0]).toMatch(/never offered a\/after-backup before the loss/);
    expect(
      evaluateExpectations({
        ...base([]),
        expectations: [{ expect: 'restore-drops-later-registrations' }],
      })[0]!.met,
    ).toBe(false);
  });

  it('keeps the drill watching after the heal for as long as the restore expectation allows', () => {
    expect(watchAfterHealSeconds([{ expect: 'recovers' }, { expect: 'no-identity-loss' }], 2)).toBe(0);
    expect(watchAfterHealSeconds([{ expect: 'restore-drops-later-registrations' }], 2)).toBe(9);
    expect(watchAfterHealSeconds([{ expect: 'restore-drops-later-registrations' }], 2, 30)).toBe(34);
    expect(
      watchAfterHealSeconds(
        [
          { expect: 'restore-drops-later-registrations', within: 20 },
          { expect: 'recovers', within: 60 },
        ],
        6,
      ),
    ).toBe(20);
  });

  it('checks that entry cache reloads went on while the fault held', () => {
    const check = (entryCacheReloadFailures?: { server: string; failures: number }[]) =>
      evaluateExpectations({
        ...base([]),
        expectations: [{ expect: 'entry-cache-reloads' }],
        ...(entryCacheReloadFailures ? { entryCacheReloadFailures } : {}),
      })[0]!;
    expect(check([{ server: 'upstream server 0', failures: 0 }]).met).toBe(true);
    const failed = check([
      { server: 'upstream server 0', failures: 0 },
      { server: 'upstream server 1', failures: 3 },
    ]);
    expect(failed.met).toBe(false);
    expect(failed.evidence).toContain('upstream server 1: 3 failed reload(s) during the fault');
    expect(check().met).toBe(false);
  });
});
