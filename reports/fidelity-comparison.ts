/**
 * The side-by-side comparison of a fidelity run: each drill of the suite as run on both
 * implementations, reduced to the same figures (verdict, per-workload predicted and observed identity
 * loss, recovery after the heal, renewals made in time, rotation propagation), with every difference
 * beyond one sync interval flagged and its evidence from both runs. Pure: the same runs give the same
 * comparison, so the report can be rendered again from the results store at any time.
 */
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import type { DrillRecord, ObservedIdentity, PredictedIdentity, Verdict } from '../scenarios/drill-record.js';
import { NEW_AUTHORITY_OUTCOME } from '../scenarios/expectations.js';
import type { FidelityRecord } from '../scenarios/fidelity-record.js';
import type { Loss } from '../scenarios/ttl-model.js';
import { runMetrics } from './measurements.js';
import { windowSince } from './report-time.js';

/** A stored drill run and its probe samples. */
export interface StoredRun {
  drill: DrillRecord;
  samples: ProbeSample[];
}

/** Two values, one per side, in the fidelity record's side order. */
export type Pair<T> = [T, T];

export interface PredictedLoss {
  loss: Loss;
  /** Seconds without identity the model allows: none when 'never'; from none when only 'possibly'. */
  seconds: { min: number; max: number };
}

export interface Renewals {
  /** SVIDs whose renewal point (half their lifetime) fell within the drill, and whose fate is known. */
  due: number;
  /** Of those, how many had a successor before they expired. */
  inTime: number;
  /** inTime / due; absent when none was due. */
  fraction?: number;
}

export interface WorkloadFigures {
  group: string;
  predicted: PredictedLoss;
  observedLossSeconds: number;
  /** The gaps in words, as seconds since the fault began. */
  observed: string;
  renewals: Renewals;
  /** Seconds from the held SVID's expiry (the model's lossAt) to the start of the first gap, when both are known. */
  lossFromExpiry?: number;
  /** Seconds from the heal to the end of the last gap, when there was a gap and a fault. */
  backAfterHeal?: number;
}

export interface RotationPropagation {
  /** Workloads that received an SVID from an authority other than the one they held when the fault began. */
  moved: number;
  of: number;
  /** Seconds from the fault's start until the last of them had (only when every workload moved). */
  seconds?: number;
}

export interface DrillFigures {
  runId: string;
  verdict: Verdict;
  reason: string;
  /** Seconds the fault was actually held. */
  heldSeconds?: number;
  /** Seconds from the heal until the last workload held a valid SVID again. */
  recoverySeconds?: number;
  /** Absent when no workload changed authority during the drill: the drill does not measure it. */
  rotation?: RotationPropagation;
}

export type Figure =
  | 'missing'
  | 'verdict'
  | 'workload'
  | 'predicted-loss'
  | 'observed-loss'
  | 'renewals'
  | 'recovery'
  | 'rotation-propagation';

export interface Difference {
  figure: Figure;
  /** The workload it is about, when it is about one. */
  workload?: string;
  /** One line saying what differs, with both values. */
  summary: string;
  /** What each side showed, in the fidelity record's side order. */
  evidence: Pair<string>;
}

export interface WorkloadComparison {
  spiffeId: string;
  /** Undefined on a side whose drill did not have the workload (or did not run). */
  sides: Pair<WorkloadFigures | undefined>;
}

export interface DrillComparison {
  scenario: string;
  outage: string;
  /** Undefined on a side where this drill did not run. */
  sides: Pair<DrillFigures | undefined>;
  workloads: WorkloadComparison[];
  /** Flagged: the implementations behaved differently. */
  differences: Difference[];
  /**
   * Shown, not flagged: the TTL model predicted differently, from the SVID each side happened to
   * hold when the fault began (its timing, not the implementation's behaviour).
   */
  notes: Difference[];
}

export interface FidelityComparison {
  fidelity: FidelityRecord;
  /** Differences larger than this many seconds are flagged: the topology's sync interval. */
  thresholdSeconds: number;
  drills: DrillComparison[];
  differences: number;
}

/** Figures keep milliseconds, so that the threshold is applied to what was measured; words show tenths. */
const round = (seconds: number) => Math.round(seconds * 1000) / 1000;
const tenths = (seconds: number) => Math.round(seconds * 10) / 10;
const secondsText = (seconds: number | undefined) =>
  seconds === undefined ? 'not measured' : `${tenths(seconds)} s`;

export function predictedLoss(predicted: PredictedIdentity): PredictedLoss {
  if (predicted.loss === 'never' || predicted.lossAt === undefined || !predicted.recoveredBy)
    return { loss: predicted.loss, seconds: { min: 0, max: 0 } };
  const at = predicted.lossAt;
  const max = Math.max(0, (predicted.recoveredBy.latest - at) / 1000);
  const min = predicted.loss === 'always' ? Math.max(0, (predicted.recoveredBy.earliest - at) / 1000) : 0;
  return { loss: predicted.loss, seconds: { min: round(min), max: round(max) } };
}

/**
 * Renewals due within the drill and made in time: an SVID is due for renewal once half its lifetime
 * has passed (agents renew between 45 and 55 %); it was renewed in time when the next SVID arrived
 * before it expired. One still valid at the drill's end with no successor is left out: its fate is
 * unknown.
 */
export function renewals(observed: ObservedIdentity, window: { start: number; end: number }): Renewals {
  let due = 0;
  let inTime = 0;
  observed.svids.forEach((svid, i) => {
    const renewAt = svid.notBefore + (svid.notAfter - svid.notBefore) / 2;
    if (renewAt < window.start || renewAt > window.end) return;
    const next = observed.svids[i + 1];
    if (!next && svid.notAfter >= window.end) return;
    due++;
    if (next && next.at <= svid.notAfter) inTime++;
  });
  return { due, inTime, ...(due > 0 ? { fraction: inTime / due } : {}) };
}

/**
 * How long a rotation took to reach every workload: from the fault's start to the last workload's
 * first SVID from an authority other than the one it held then. Only for drills that rotate (those
 * judged by the new-authority expectation): elsewhere an agent moving to another HA server also
 * changes the signing authority, which is no rotation. Undefined when not measured or none changed.
 */
export function rotationPropagation(drill: DrillRecord): RotationPropagation | undefined {
  const start = drill.fault?.start;
  const rotates = drill.expectations.some((e) => e.name.startsWith(NEW_AUTHORITY_OUTCOME));
  if (start === undefined || !rotates || drill.workloads.length === 0) return undefined;
  const firstNew: number[] = [];
  for (const w of drill.workloads) {
    const held = w.observed.svids.filter((v) => v.at < start).at(-1)?.authority;
    const next = w.observed.svids.find((v) => v.at >= start && held !== undefined && v.authority !== held);
    if (next) firstNew.push(next.at);
  }
  if (firstNew.length === 0) return undefined;
  const all = firstNew.length === drill.workloads.length;
  return {
    moved: firstNew.length,
    of: drill.workloads.length,
    ...(all ? { seconds: round((Math.max(...firstNew) - start) / 1000) } : {}),
  };
}

function drillFigures(run: StoredRun): DrillFigures {
  const { drill } = run;
  const metrics = runMetrics(drill, run.samples);
  const rotation = rotationPropagation(drill);
  return {
    runId: drill.runId,
    verdict: drill.verdict,
    reason: drill.reason,
    ...(drill.fault ? { heldSeconds: round((drill.fault.end - drill.fault.start) / 1000) } : {}),
    ...(metrics.recoverySeconds !== undefined ? { recoverySeconds: round(metrics.recoverySeconds) } : {}),
    ...(rotation ? { rotation } : {}),
  };
}

function workloadFigures(drill: DrillRecord): Map<string, WorkloadFigures> {
  const origin = drill.fault?.start ?? drill.startedAt;
  const window = { start: drill.startedAt, end: drill.finishedAt };
  return new Map(
    drill.workloads.map((w) => {
      const lost = w.observed.gaps.reduce((sum, g) => sum + (g.end - g.start) / 1000, 0);
      const observed =
        w.observed.gaps.length === 0
          ? 'no gap'
          : `${w.observed.gaps.map((g) => windowSince(origin, g.start, g.end)).join(', ')} after the fault began`;
      const first = w.observed.gaps[0];
      const last = w.observed.gaps.at(-1);
      const lossAt = w.predicted.lossAt;
      return [
        w.spiffeId,
        {
          group: w.group,
          predicted: predictedLoss(w.predicted),
          observedLossSeconds: round(lost),
          observed,
          renewals: renewals(w.observed, window),
          ...(first && lossAt !== undefined ? { lossFromExpiry: round((first.start - lossAt) / 1000) } : {}),
          ...(last && drill.fault ? { backAfterHeal: round((last.end - drill.fault.end) / 1000) } : {}),
        },
      ];
    }),
  );
}

/** Whether two durations in seconds differ by more than `threshold` seconds (compared in milliseconds). */
export function beyond(a: number, b: number, threshold: number): boolean {
  return Math.round(Math.abs(a - b) * 1000) > Math.round(threshold * 1000);
}

function judged(verdict: Verdict): boolean {
  return verdict === 'passed' || verdict === 'failed';
}

const renewalText = (r: Renewals) =>
  r.due === 0 ? 'no renewal due' : `${r.inTime} of ${r.due} renewals in time`;

const predictedText = (p: PredictedLoss) =>
  p.loss === 'never'
    ? 'no loss'
    : `${p.loss === 'always' ? 'loss' : 'possible loss'} of ${tenths(p.seconds.min)}–${tenths(p.seconds.max)} s`;

function rotationText(r: RotationPropagation | undefined): string {
  if (!r) return 'no workload changed authority';
  if (r.seconds === undefined) return `${r.moved} of ${r.of} workloads moved to a new authority`;
  return `all ${r.of} workloads on a new authority ${tenths(r.seconds)} s after the fault began`;
}

/** Names of the two sides: their implementations, numbered when both are the same. */
export function sideNames(fidelity: FidelityRecord): Pair<string> {
  const [a, b] = fidelity.sides.map((side) => side.implementation) as Pair<string>;
  return a === b ? [`${a} #1`, `${b} #2`] : [a, b];
}

/** A different prediction for one workload: a note, not a difference. */
function predictionNote(spiffeId: string, names: Pair<string>, [a, b]: Pair<WorkloadFigures>): Difference[] {
  if (a.predicted.loss === b.predicted.loss) return [];
  return [
    {
      figure: 'predicted-loss',
      workload: spiffeId,
      summary: `the model predicted ${a.predicted.loss} on ${names[0]} and ${b.predicted.loss} on ${names[1]}, from the SVIDs each held when the fault began`,
      evidence: [
        `${names[0]}: predicted ${predictedText(a.predicted)}`,
        `${names[1]}: predicted ${predictedText(b.predicted)}`,
      ],
    },
  ];
}

/**
 * Whether two losses of different length are one behaviour from different starting points: each side
 * lost its identity when the SVID it held at the fault's start expired, and was back as soon after the
 * heal as the other. The SVID held depends on where in its renewal cycle the fault caught it, which
 * is the run's timing, not the implementation's.
 */
function sameLossFromOtherSvids([a, b]: Pair<WorkloadFigures>, threshold: number): boolean {
  return (
    a.lossFromExpiry !== undefined &&
    b.lossFromExpiry !== undefined &&
    a.backAfterHeal !== undefined &&
    b.backAfterHeal !== undefined &&
    !beyond(a.lossFromExpiry, b.lossFromExpiry, threshold) &&
    !beyond(a.backAfterHeal, b.backAfterHeal, threshold)
  );
}

const signed = (seconds: number) => `${seconds < 0 ? '−' : '+'}${tenths(Math.abs(seconds))} s`;

/** The differences (flagged) and notes between one workload's figures on the two sides. */
function workloadDifferences(
  spiffeId: string,
  names: Pair<string>,
  [a, b]: Pair<WorkloadFigures>,
  threshold: number,
): { differences: Difference[]; notes: Difference[] } {
  const found: Difference[] = [];
  const notes: Difference[] = [];
  const both = (text: (w: WorkloadFigures) => string): Pair<string> => [
    `${names[0]}: ${text(a)}`,
    `${names[1]}: ${text(b)}`,
  ];
  if (beyond(a.observedLossSeconds, b.observedLossSeconds, threshold)) {
    const apart = `${tenths(a.observedLossSeconds)} s on ${names[0]}, ${tenths(b.observedLossSeconds)} s on ${names[1]}`;
    if (sameLossFromOtherSvids([a, b], threshold))
      notes.push({
        figure: 'observed-loss',
        workload: spiffeId,
        summary: `identity lost for ${apart}, from SVIDs the fault caught at different points of their renewal cycle: on both, lost when the SVID held expired and back within one sync interval (${threshold} s) of each other after the heal`,
        evidence: both(
          (w) =>
            `${tenths(w.observedLossSeconds)} s without identity (${w.observed}); lost ${signed(w.lossFromExpiry!)} from the held SVID's expiry, back ${signed(w.backAfterHeal!)} from the heal`,
        ),
      });
    else
      found.push({
        figure: 'observed-loss',
        workload: spiffeId,
        summary: `identity lost for ${apart}: ${round(Math.abs(a.observedLossSeconds - b.observedLossSeconds))} s apart, more than one sync interval (${threshold} s)`,
        evidence: both((w) => `${tenths(w.observedLossSeconds)} s without identity (${w.observed})`),
      });
  }
  // A sync interval of timing can move one renewal across the drill's edges: more than one is a difference.
  const missed = (r: Renewals) => r.due - r.inTime;
  if (Math.abs(missed(a.renewals) - missed(b.renewals)) > 1)
    found.push({
      figure: 'renewals',
      workload: spiffeId,
      summary: `${missed(a.renewals)} renewals late or missing on ${names[0]}, ${missed(b.renewals)} on ${names[1]}`,
      evidence: both((w) => renewalText(w.renewals)),
    });
  return { differences: found, notes };
}

function drillDifferences(
  names: Pair<string>,
  figures: Pair<DrillFigures>,
  workloads: WorkloadComparison[],
  threshold: number,
): Difference[] {
  const [a, b] = figures;
  const found: Difference[] = [];
  if (a.verdict !== b.verdict)
    found.push({
      figure: 'verdict',
      summary: `${a.verdict} on ${names[0]}, ${b.verdict} on ${names[1]}`,
      evidence: [`${names[0]}: ${a.verdict} — ${a.reason}`, `${names[1]}: ${b.verdict} — ${b.reason}`],
    });
  // Figures of a drill that errored or was aborted measure an interrupted run: only verdicts compare.
  if (!judged(a.verdict) || !judged(b.verdict)) return found;
  for (const w of workloads) {
    const [wa, wb] = w.sides;
    if (wa && wb) found.push(...workloadDifferences(w.spiffeId, names, [wa, wb], threshold).differences);
    else
      found.push({
        figure: 'workload',
        workload: w.spiffeId,
        summary: `only ${wa ? names[0] : names[1]} has this workload`,
        evidence: [
          `${names[0]}: ${wa ? 'observed' : 'absent'}`,
          `${names[1]}: ${wb ? 'observed' : 'absent'}`,
        ],
      });
  }
  if (
    a.recoverySeconds !== undefined &&
    b.recoverySeconds !== undefined &&
    beyond(a.recoverySeconds, b.recoverySeconds, threshold)
  )
    found.push({
      figure: 'recovery',
      summary: `every workload back ${secondsText(a.recoverySeconds)} after the heal on ${names[0]}, ${secondsText(b.recoverySeconds)} on ${names[1]}: more than one sync interval (${threshold} s) apart`,
      evidence: [
        `${names[0]}: fault held ${secondsText(a.heldSeconds)}, last workload back ${secondsText(a.recoverySeconds)} after the heal`,
        `${names[1]}: fault held ${secondsText(b.heldSeconds)}, last workload back ${secondsText(b.recoverySeconds)} after the heal`,
      ],
    });
  const ra = a.rotation;
  const rb = b.rotation;
  if (ra || rb) {
    const timed = ra?.seconds !== undefined && rb?.seconds !== undefined;
    const differs = timed
      ? beyond(ra.seconds!, rb.seconds!, threshold)
      : ra?.moved !== rb?.moved || ra?.of !== rb?.of;
    if (differs)
      found.push({
        figure: 'rotation-propagation',
        summary: timed
          ? `a new authority reached every workload in ${secondsText(ra.seconds)} on ${names[0]}, ${secondsText(rb.seconds)} on ${names[1]}: more than one sync interval (${threshold} s) apart`
          : `the authority change reached ${ra?.moved ?? 0} workloads on ${names[0]}, ${rb?.moved ?? 0} on ${names[1]}`,
        evidence: [`${names[0]}: ${rotationText(ra)}`, `${names[1]}: ${rotationText(rb)}`],
      });
  }
  return found;
}

function missingSide(names: Pair<string>, present: 0 | 1, run: DrillFigures): Difference {
  const absent = present === 0 ? 1 : 0;
  const evidence: Pair<string> = ['', ''];
  evidence[present] = `${names[present]}: ${run.verdict} — ${run.reason}`;
  evidence[absent] = `${names[absent]}: did not run (its suite stopped or failed first)`;
  return { figure: 'missing', summary: `ran on ${names[present]} only`, evidence };
}

/** Compares every drill of the two sides, matched by scenario, outage class and occurrence. */
export function compareFidelity(fidelity: FidelityRecord, runs: Pair<StoredRun[]>): FidelityComparison {
  const threshold = fidelity.syncIntervalSeconds;
  const names = sideNames(fidelity);
  const keyed = (list: StoredRun[]) => {
    const seen = new Map<string, number>();
    return list.map((run) => {
      const base = `${run.drill.scenario} ${run.drill.outage}`;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      return [`${base} #${n}`, run] as const;
    });
  };
  const [left, right] = [new Map(keyed(runs[0])), new Map(keyed(runs[1]))];
  const keys = [...left.keys(), ...[...right.keys()].filter((k) => !left.has(k))];
  const drills = keys.map((key): DrillComparison => {
    const pair: Pair<StoredRun | undefined> = [left.get(key), right.get(key)];
    const some = (pair[0] ?? pair[1])!.drill;
    const figures: Pair<DrillFigures | undefined> = [
      pair[0] && drillFigures(pair[0]),
      pair[1] && drillFigures(pair[1]),
    ];
    const perSide = pair.map((run) =>
      run ? workloadFigures(run.drill) : new Map<string, WorkloadFigures>(),
    );
    const ids = [...perSide[0]!.keys(), ...[...perSide[1]!.keys()].filter((id) => !perSide[0]!.has(id))];
    const workloads = ids.map((spiffeId) => ({
      spiffeId,
      sides: [perSide[0]!.get(spiffeId), perSide[1]!.get(spiffeId)] as Pair<WorkloadFigures | undefined>,
    }));
    const [fa, fb] = figures;
    const differences =
      fa && fb
        ? drillDifferences(names, [fa, fb], workloads, threshold)
        : [missingSide(names, fa ? 0 : 1, (fa ?? fb)!)];
    // Notes only where both sides were judged: an interrupted run's figures are not compared.
    const judgedBoth = fa && fb && judged(fa.verdict) && judged(fb.verdict);
    const notes = workloads.flatMap((w) => {
      if (!w.sides[0] || !w.sides[1]) return [];
      const pair: Pair<WorkloadFigures> = [w.sides[0], w.sides[1]];
      return [
        ...predictionNote(w.spiffeId, names, pair),
        ...(judgedBoth ? workloadDifferences(w.spiffeId, names, pair, threshold).notes : []),
      ];
    });
    return { scenario: some.scenario, outage: some.outage, sides: figures, workloads, differences, notes };
  });
  return {
    fidelity,
    thresholdSeconds: threshold,
    drills,
    differences: drills.reduce((sum, d) => sum + d.differences.length, 0),
  };
}
