import { describe, expect, it } from 'vitest';
import {
  beyond,
  compareFidelity,
  predictedLoss,
  renewals,
  rotationPropagation,
} from '../../reports/fidelity-comparison.js';
import type { DrillRecord, ObservedIdentity } from '../../scenarios/drill-record.js';
import { NEW_AUTHORITY_OUTCOME } from '../../scenarios/expectations.js';
import { FAILED_RUN, GAP_WORKLOAD, PASSED_RUN } from '../support/sample-suite.js';
import { sampleFidelity, SYNC_INTERVAL } from '../support/sample-fidelity.js';

/** The spire side's copy of FAILED_RUN with GAP_WORKLOAD's gap (30–67 s, healed at 65 s) longer by `ms`. */
function longerGap(ms: number) {
  return sampleFidelity((drill) => {
    if (drill.runId !== `${FAILED_RUN}-spire`) return drill;
    const w = drill.workloads.find((x) => x.spiffeId === GAP_WORKLOAD)!;
    w.observed.gaps = w.observed.gaps.map((g) => ({ ...g, end: g.end + ms }));
    return drill;
  });
}

function compared(fixture: ReturnType<typeof sampleFidelity>) {
  return compareFidelity(fixture.record, fixture.runs);
}

const figuresOf = (fixture: ReturnType<typeof sampleFidelity>, figure: string) =>
  compared(fixture).drills.flatMap((d) => d.differences.filter((x) => x.figure === figure));

describe('the fidelity comparison', () => {
  it('finds two identical runs in agreement, drill by drill, matched by scenario and outage', () => {
    const result = compared(sampleFidelity());
    expect(result.thresholdSeconds).toBe(SYNC_INTERVAL);
    expect(result.drills.map((d) => [d.scenario, d.outage])).toEqual([
      ['lb-down', 'short'],
      ['lb-down', 'long'],
    ]);
    expect(result.differences).toBe(0);
    for (const d of result.drills) {
      expect(d.differences).toEqual([]);
      expect(d.sides[0]!.runId).not.toBe(d.sides[1]!.runId);
    }
    const long = result.drills[1]!;
    expect(long.sides[0]).toMatchObject({ verdict: 'failed', heldSeconds: 45, recoverySeconds: 2 });
    const gap = long.workloads.find((w) => w.spiffeId === GAP_WORKLOAD)!;
    expect(gap.sides[0]).toMatchObject({
      group: 'east',
      observedLossSeconds: 37,
      observed: '10.0–47.0 s after the fault began',
      predicted: { loss: 'always', seconds: { min: 35, max: 42 } },
    });
  });

  it('does not flag a loss or a recovery exactly one sync interval apart', () => {
    const result = compared(longerGap(SYNC_INTERVAL * 1000));
    const long = result.drills[1]!;
    expect(long.sides.map((s) => s!.recoverySeconds)).toEqual([2, 3]);
    expect(
      long.workloads.find((w) => w.spiffeId === GAP_WORKLOAD)!.sides.map((s) => s!.observedLossSeconds),
    ).toEqual([37, 38]);
    expect(result.differences).toBe(0);
  });

  it('flags a loss and a recovery more than one sync interval apart, with both runs as evidence', () => {
    const fixture = longerGap(SYNC_INTERVAL * 1000 + 1);
    const [loss] = figuresOf(fixture, 'observed-loss');
    expect(loss).toMatchObject({ workload: GAP_WORKLOAD });
    expect(loss!.summary).toMatch(/37 s on tspire, 38 s on spire: 1.001 s apart/);
    expect(loss!.summary).toMatch(/more than one sync interval \(1 s\)/);
    expect(loss!.evidence[0]).toBe('tspire: 37 s without identity (10.0–47.0 s after the fault began)');
    expect(loss!.evidence[1]).toBe('spire: 38 s without identity (10.0–48.0 s after the fault began)');
    const [recovery] = figuresOf(fixture, 'recovery');
    expect(recovery!.evidence).toEqual([
      'tspire: fault held 45 s, last workload back 2 s after the heal',
      'spire: fault held 45 s, last workload back 3 s after the heal',
    ]);
    // Only the long drill differs: the short one stays in agreement.
    expect(compared(fixture).drills.map((d) => d.differences.length > 0)).toEqual([false, true]);
  });

  it('compares at the sync interval in milliseconds, so rounding cannot tip it', () => {
    expect(beyond(37, 38, 1)).toBe(false);
    expect(beyond(37, 38.001, 1)).toBe(true);
    expect(beyond(0.1 + 0.2, 0.3 + 5, 5)).toBe(false);
    expect(beyond(10, 4.999, 5)).toBe(true);
  });

  it('flags different verdicts with each side’s reason', () => {
    const [verdict] = figuresOf(
      sampleFidelity((d) =>
        d.runId === `${FAILED_RUN}-spire` ? { ...d, verdict: 'passed', reason: 'every expectation met' } : d,
      ),
      'verdict',
    );
    expect(verdict!.summary).toBe('failed on tspire, passed on spire');
    expect(verdict!.evidence[0]).toMatch(/^tspire: failed — no workload loses identity/);
    expect(verdict!.evidence[1]).toBe('spire: passed — every expectation met');
  });

  it('compares only the verdicts of a drill that errored on one side', () => {
    const result = compared(
      sampleFidelity((d) =>
        d.runId === `${PASSED_RUN}-spire`
          ? { ...d, verdict: 'errored', reason: 'spin-up failed: port taken', workloads: [] }
          : d,
      ),
    );
    expect(result.drills[0]!.differences.map((x) => x.figure)).toEqual(['verdict']);
  });

  it('flags a drill that ran on one side only', () => {
    const result = compared(sampleFidelity((d) => (d.runId === `${FAILED_RUN}-spire` ? undefined : d)));
    const long = result.drills[1]!;
    expect(long.sides[1]).toBeUndefined();
    expect(long.differences).toEqual([
      {
        figure: 'missing',
        summary: 'ran on tspire only',
        evidence: [
          'tspire: failed — no workload loses identity: 2 of 3 workloads had a gap',
          'spire: did not run (its suite stopped or failed first)',
        ],
      },
    ]);
  });

  it('notes, without flagging, a loss that differs only by when the SVID the fault caught expired', () => {
    // The spire side's SVID expired 5 s later (its renewal cycle's phase), it lost identity then and
    // was back at the same time after the heal: the same behaviour from another starting point.
    const later = sampleFidelity((drill) => {
      if (drill.runId !== `${FAILED_RUN}-spire`) return drill;
      const w = drill.workloads.find((x) => x.spiffeId === GAP_WORKLOAD)!;
      w.observed.gaps = w.observed.gaps.map((g) => ({ ...g, start: g.start + 5_000 }));
      w.predicted = { ...w.predicted, lossAt: w.predicted.lossAt! + 5_000 };
      return drill;
    });
    const long = compared(later).drills[1]!;
    expect(long.differences.filter((d) => d.figure === 'observed-loss')).toEqual([]);
    const [note] = long.notes.filter((n) => n.figure === 'observed-loss');
    expect(note).toMatchObject({ workload: GAP_WORKLOAD });
    expect(note!.summary).toMatch(/37 s on tspire, 32 s on spire, from SVIDs the fault caught/);
    expect(note!.evidence[1]).toMatch(/lost \+0 s from the held SVID's expiry, back \+2 s from the heal$/);
    // Lost later than its SVID expired: a behaviour of its own, flagged.
    const served = sampleFidelity((drill) => {
      if (drill.runId !== `${FAILED_RUN}-spire`) return drill;
      const w = drill.workloads.find((x) => x.spiffeId === GAP_WORKLOAD)!;
      w.observed.gaps = w.observed.gaps.map((g) => ({ ...g, start: g.start + 5_000 }));
      return drill;
    });
    expect(figuresOf(served, 'observed-loss')).toHaveLength(1);
  });

  it('notes a different prediction without flagging it: it comes from each side’s own starting point', () => {
    const result = compared(
      sampleFidelity((d) => {
        if (d.runId !== `${FAILED_RUN}-spire`) return d;
        d.workloads.find((w) => w.spiffeId === GAP_WORKLOAD)!.predicted = { loss: 'never' };
        return d;
      }),
    );
    const long = result.drills[1]!;
    expect(long.differences).toEqual([]);
    expect(result.differences).toBe(0);
    expect(long.notes).toHaveLength(1);
    expect(long.notes[0]!.summary).toMatch(
      /predicted always on tspire and never on spire, from the SVIDs each held/,
    );
    expect(long.notes[0]!.evidence).toEqual([
      'tspire: predicted loss of 35–42 s',
      'spire: predicted no loss',
    ]);
  });

  it('numbers the sides when both run the same implementation', () => {
    const fixture = sampleFidelity((d) =>
      d.runId === `${FAILED_RUN}-spire` ? { ...d, verdict: 'passed', reason: 'every expectation met' } : d,
    );
    fixture.record.sides[1].implementation = 'tspire';
    const [verdict] = figuresOf(fixture, 'verdict');
    expect(verdict!.summary).toBe('failed on tspire #1, passed on tspire #2');
  });
});

describe('figures a fidelity run compares', () => {
  const t0 = Date.UTC(2026, 10, 26, 7, 0, 0);
  const at = (s: number) => t0 + s * 1000;
  /** SVIDs of 30 s (20 s TTL plus 10 s backdating) received at each of `times`. */
  const svids = (times: number[], authority = 'aa') =>
    times.map((t, i) => ({
      serial: String(i),
      notBefore: at(t - 10),
      notAfter: at(t + 20),
      at: at(t),
      authority,
    }));
  const observed = (list: ObservedIdentity['svids']): ObservedIdentity => ({
    gaps: [],
    svids: list,
    handshakes: { ok: 0, failed: 0 },
    jwt: { ok: 0, failed: 0 },
  });

  it('counts renewals due in the drill and those made before the SVID expired', () => {
    // Renewal points at 5, 20, 65 s; the third arrives after the second expired (35 s); the last
    // SVID outlives the drill, so whether it would be renewed in time is unknown.
    expect(renewals(observed(svids([0, 15, 60, 75])), { start: at(0), end: at(90) })).toEqual({
      due: 3,
      inTime: 2,
      fraction: 2 / 3,
    });
    expect(renewals(observed(svids([0])), { start: at(0), end: at(10) })).toEqual({ due: 0, inTime: 0 });
    // Expired without a successor before the drill ended: due, and missed.
    expect(renewals(observed(svids([0])), { start: at(0), end: at(40) })).toEqual({
      due: 1,
      inTime: 0,
      fraction: 0,
    });
  });

  it('measures rotation propagation from the fault until every workload holds a new authority', () => {
    const drill = (moves: (number | undefined)[]): DrillRecord => ({
      runId: 'r',
      scenario: 'ca-compromise',
      description: '',
      outage: 'short',
      outageSeconds: 10,
      deploymentId: 'd',
      topology: 't',
      verdict: 'passed',
      reason: '',
      startedAt: at(0),
      finishedAt: at(60),
      fault: { start: at(20), end: at(30) },
      injections: [],
      expectations: [{ name: `${NEW_AUTHORITY_OUTCOME} within 20.0 s`, met: true, evidence: [] }],
      findings: [],
      workloads: moves.map((move, i) => ({
        spiffeId: `spiffe://td/upstream/agent-0/workload-${i}`,
        group: 'upstream',
        predicted: { loss: 'never' },
        observed: observed([
          ...svids([5, 15], 'old'),
          ...(move === undefined ? svids([35], 'old') : svids([20 + move], 'new')),
        ]),
      })),
    });
    expect(rotationPropagation(drill([3, 7.25]))).toEqual({ moved: 2, of: 2, seconds: 7.25 });
    expect(rotationPropagation(drill([3, undefined]))).toEqual({ moved: 1, of: 2 });
    expect(rotationPropagation(drill([undefined, undefined]))).toBeUndefined();
    // A drill that does not rotate does not measure it, though agents moving between HA servers change authority.
    expect(rotationPropagation({ ...drill([3, 7.25]), expectations: [] })).toBeUndefined();
  });

  it('words a prediction as the seconds of loss it allows', () => {
    expect(predictedLoss({ loss: 'never' })).toEqual({ loss: 'never', seconds: { min: 0, max: 0 } });
    const window = { lossAt: at(30), recoveredBy: { earliest: at(65), latest: at(72) } };
    expect(predictedLoss({ loss: 'always', ...window })).toEqual({
      loss: 'always',
      seconds: { min: 35, max: 42 },
    });
    expect(predictedLoss({ loss: 'possibly', ...window })).toEqual({
      loss: 'possibly',
      seconds: { min: 0, max: 42 },
    });
  });
});
