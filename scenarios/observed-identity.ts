/**
 * What the probes saw of one workload's identity over a window: when it held no valid X509-SVID, which
 * SVIDs it held, and how its handshakes and JWT-SVIDs fared. Pure: the drill's verdict and the report
 * read the same numbers from the same samples.
 *
 * Windows are half-open, [start, end): an instant belongs to the window when start ≤ t < end. An SVID
 * is valid on [NotBefore, NotAfter); a workload uses the SVID it received last (an SVID received again,
 * same serial, is not news: the agent re-sends what it holds whenever a stream reopens).
 */
import type { ObservedIdentity, TimeWindow } from './drill-record.js';
import type { ProbeSample, SvidSample } from '../deployment/probes/probe-sample.js';

/** Every workload's SVID samples, by SPIFFE ID, in the order of `samples`. */
export function svidsByWorkload(samples: ProbeSample[]): Map<string, SvidSample[]> {
  const map = new Map<string, SvidSample[]>();
  for (const s of samples)
    if (s.kind === 'svid') {
      const list = map.get(s.workload) ?? [];
      list.push(s);
      map.set(s.workload, list);
    }
  return map;
}

/** The SVID a workload held at `at`: the newest received by then. */
export function heldAt(samples: SvidSample[] | undefined, at: number): SvidSample | undefined {
  let held: SvidSample | undefined;
  for (const s of samples ?? []) if (s.at <= at && (!held || s.at >= held.at)) held = s;
  return held;
}

/** SVID samples in the order received, each serial once (its first receipt). */
function receivedSvids(samples: ProbeSample[]): SvidSample[] {
  const seen = new Set<string>();
  return samples
    .filter((s): s is SvidSample => s.kind === 'svid')
    .sort((a, b) => a.at - b.at)
    .filter((s) => {
      if (seen.has(s.serial)) return false;
      seen.add(s.serial);
      return true;
    });
}

/** The windows in which the workload held no valid SVID, clipped to `window`, touching ones merged. */
function identityGaps(svids: SvidSample[], window: TimeWindow): TimeWindow[] {
  const invalid: TimeWindow[] = [];
  invalid.push({ start: -Infinity, end: svids[0]?.at ?? Infinity });
  svids.forEach((svid, i) => {
    const heldUntil = svids[i + 1]?.at ?? Infinity;
    if (svid.notBefore > svid.at) invalid.push({ start: svid.at, end: Math.min(svid.notBefore, heldUntil) });
    if (svid.notAfter < heldUntil) invalid.push({ start: Math.max(svid.notAfter, svid.at), end: heldUntil });
  });
  const gaps: TimeWindow[] = [];
  for (const span of invalid.sort((a, b) => a.start - b.start)) {
    const start = Math.max(span.start, window.start);
    const end = Math.min(span.end, window.end);
    if (start >= end) continue;
    const last = gaps.at(-1);
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else gaps.push({ start, end });
  }
  return gaps;
}

/** Observations of one workload in `window`; `samples` are that workload's, from before the window too. */
export function observeIdentity(samples: ProbeSample[], window: TimeWindow): ObservedIdentity {
  const svids = receivedSvids(samples);
  const inWindow = (at: number) => at >= window.start && at < window.end;
  // The SVID held when the window opens belongs to it, as do those received inside it.
  const heldAtStart = svids.findLastIndex((s) => s.at <= window.start);
  const shown = svids.filter((s, i) => i >= heldAtStart && s.at < window.end);
  const count = (kind: 'handshake' | 'jwt') => {
    const taken = samples.filter((s) => s.kind === kind && inWindow(s.at)) as { ok: boolean }[];
    const ok = taken.filter((s) => s.ok).length;
    return { ok, failed: taken.length - ok };
  };
  return {
    gaps: identityGaps(svids, window),
    svids: shown.map(({ serial, notBefore, notAfter, at, authority }) => ({
      serial,
      notBefore,
      notAfter,
      at,
      authority,
    })),
    handshakes: count('handshake'),
    jwt: count('jwt'),
  };
}
