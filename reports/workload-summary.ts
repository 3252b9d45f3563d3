/**
 * One workload's identity in words: what the TTL model predicted and what the probes saw, side by
 * side, so a failed drill's report explains itself in JUnit text as well as in the HTML tables.
 */
import type { ObservedIdentity, PredictedIdentity, WorkloadOutcome } from '../scenarios/drill-record.js';
import { windowSince, secondsSince } from './report-time.js';

/** The path of a SPIFFE ID (`/east/agent-0/workload-1`), which names a workload within its trust domain. */
export function workloadName(spiffeId: string): string {
  const match = /^spiffe:\/\/[^/]+(\/.*)$/.exec(spiffeId);
  return match?.[1] ?? spiffeId;
}

export function predictedText(predicted: PredictedIdentity, origin: number): string {
  if (predicted.loss === 'never') return 'no loss';
  const lossAt = predicted.lossAt === undefined ? '' : ` at ${secondsSince(origin, predicted.lossAt)}`;
  const recovered = predicted.recoveredBy
    ? `, recovered by ${windowSince(origin, predicted.recoveredBy.earliest, predicted.recoveredBy.latest)}`
    : '';
  return `${predicted.loss === 'always' ? 'loss' : 'possible loss'}${lossAt}${recovered}`;
}

/** Total seconds without a valid SVID. */
export function gapSeconds(observed: ObservedIdentity): number {
  return observed.gaps.reduce((sum, gap) => sum + (gap.end - gap.start) / 1000, 0);
}

export function observedText(observed: ObservedIdentity, origin: number): string {
  if (observed.gaps.length === 0) return 'no gap';
  const gaps = observed.gaps.map((gap) => windowSince(origin, gap.start, gap.end)).join(', ');
  return `${observed.gaps.length === 1 ? 'gap' : 'gaps'} ${gaps} (${gapSeconds(observed).toFixed(1)} s without identity)`;
}

/** One line: "spiffe://td/east/agent-0/workload-0 (east): predicted …; observed …; 3 SVIDs; handshakes 10 ok, 2 failed; JWT 9 ok, 0 failed". */
export function workloadLine(workload: WorkloadOutcome, origin: number): string {
  const { observed } = workload;
  return (
    `${workload.spiffeId} (${workload.group}): predicted ${predictedText(workload.predicted, origin)}; ` +
    `observed ${observedText(observed, origin)}; ${observed.svids.length} SVIDs; ` +
    `handshakes ${observed.handshakes.ok} ok, ${observed.handshakes.failed} failed; ` +
    `JWT ${observed.jwt.ok} ok, ${observed.jwt.failed} failed`
  );
}
