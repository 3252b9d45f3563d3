/**
 * Checks a scenario's expectations against what the model predicted and the probes observed, each
 * outcome with the numbers compared, so a failed drill explains itself. Pure.
 */
import type { ExpectationOutcome, TimeWindow, WorkloadOutcome } from './drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import type { Expectation } from './scenario.js';
import { timingOf } from './implementation-timing.js';

export interface EvaluationInput {
  expectations: Expectation[];
  workloads: WorkloadOutcome[];
  samples: ProbeSample[];
  steady: TimeWindow;
  fault: TimeWindow;
  recovery: TimeWindow;
  /** Seconds of slack on predicted instants when the scenario states none. */
  defaultTolerance: number;
  /** Seconds between the servers' entry cache reloads (absent: SPIRE's default). */
  entryCacheReload?: number;
  /** The authority each workload's SVID chained to when the fault began (ca-compromise). */
  authorityAtInjection: Record<string, string>;
  /** A replayed pre-fault SVID against a peer after healing, when the scenario asks for it. */
  revokedReplay?: { refused: boolean; detail: string };
  /** Failed entry cache reloads per server while the fault held, from the servers' logs. */
  entryCacheReloadFailures?: { server: string; failures: number }[];
  /** db-restore: identities registered between the backup and the loss, and the workload offered each. */
  laterRegistrations?: { spiffeId: string; workload: string }[];
}

/** How the new-authority expectation's outcome is named: a fidelity run finds the drills that measure rotation by it. */
export const NEW_AUTHORITY_OUTCOME = 'every workload holds an SVID from the new authority';

/**
 * How long after the heal `restore-drops-later-registrations` gives the restore, in seconds: one
 * reload of the servers' entry cache (`entryCacheReload`, the topology's) and the agents' syncs.
 */
function restoreDropWithin(
  e: { within?: number },
  defaultTolerance: number,
  // Plans made before topologies set it ran the bundled SPIRE's default.
  entryCacheReload = timingOf(undefined).entryCacheReload,
): number {
  return e.within ?? entryCacheReload + 2 * defaultTolerance;
}

/**
 * Seconds after the heal the drill must keep watching so that every expectation measured from the
 * heal has had its whole window: ending earlier would judge an identity "still offered" that the
 * expectation still gave time to go. Pure, so the drill workflow can call it.
 */
export function watchAfterHealSeconds(
  expectations: Expectation[],
  defaultTolerance: number,
  entryCacheReload?: number,
): number {
  let seconds = 0;
  for (const e of expectations)
    if (e.expect === 'restore-drops-later-registrations')
      seconds = Math.max(seconds, restoreDropWithin(e, defaultTolerance, entryCacheReload));
  return seconds;
}

/**
 * When the workload was first offered `spiffeId` before the fault, and when, after healing, it was
 * first offered a set without it: from the probes' identities samples.
 */
function offeredAndDropped(
  samples: ProbeSample[],
  workload: string,
  spiffeId: string,
  fault: TimeWindow,
): { offeredAt?: number; droppedAt?: number } {
  let offeredAt: number | undefined;
  let droppedAt: number | undefined;
  for (const sample of samples) {
    if (sample.kind !== 'identities' || sample.workload !== workload) continue;
    const has = sample.spiffeIds.includes(spiffeId);
    if (has && offeredAt === undefined && sample.at < fault.start) offeredAt = sample.at;
    if (!has && droppedAt === undefined && sample.at >= fault.end) droppedAt = sample.at;
  }
  return {
    ...(offeredAt !== undefined ? { offeredAt } : {}),
    ...(droppedAt !== undefined ? { droppedAt } : {}),
  };
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function inGroups(w: WorkloadOutcome, groups?: string[]): boolean {
  return !groups || groups.includes(w.group);
}

function identityAsPredicted(w: WorkloadOutcome, t: number, fault: TimeWindow): string[] {
  const at = (ms: number) => `+${s(ms - fault.start)} after injection`;
  const gaps = w.observed.gaps;
  const p = w.predicted;
  if (p.loss === 'never')
    return gaps.map(
      (g) =>
        `${w.spiffeId}: predicted to keep its identity, but held no valid SVID from ${at(g.start)} for ${s(g.end - g.start)}`,
    );
  if (gaps.length === 0)
    return p.loss === 'always'
      ? [`${w.spiffeId}: predicted to lose its identity at ${at(p.lossAt!)}, but always held a valid SVID`]
      : [];
  const problems: string[] = [];
  const first = gaps[0]!;
  if (Math.abs(first.start - p.lossAt!) > t)
    problems.push(
      `${w.spiffeId}: lost its identity at ${at(first.start)}, predicted ${at(p.lossAt!)} ± ${s(t)}`,
    );
  const last = gaps[gaps.length - 1]!;
  const rb = p.recoveredBy!;
  if (last.end > rb.latest + t || last.end < rb.earliest - t)
    problems.push(
      `${w.spiffeId}: held a valid SVID again at ${at(last.end)}, predicted between ${at(rb.earliest)} and ${at(rb.latest)} ± ${s(t)}`,
    );
  if (gaps.length > 1)
    problems.push(`${w.spiffeId}: lost its identity ${gaps.length} times, predicted at most once`);
  return problems;
}

function handshakeRate(
  samples: ProbeSample[],
  window: TimeWindow,
  workloads: Set<string>,
): { ok: number; total: number } {
  let ok = 0;
  let total = 0;
  for (const sample of samples)
    if (
      sample.kind === 'handshake' &&
      workloads.has(sample.workload) &&
      sample.at >= window.start &&
      sample.at < window.end
    ) {
      total++;
      if (sample.ok) ok++;
    }
  return { ok, total };
}

export function evaluateExpectations(input: EvaluationInput): ExpectationOutcome[] {
  return input.expectations.map((e): ExpectationOutcome => {
    const chosen = input.workloads.filter((w) => inGroups(w, 'groups' in e ? e.groups : undefined));
    const scope = 'groups' in e && e.groups ? ` (${e.groups.join(', ')})` : '';
    switch (e.expect) {
      case 'identity-as-predicted': {
        const t = 1000 * (e.tolerance ?? input.defaultTolerance);
        const problems = chosen.flatMap((w) => identityAsPredicted(w, t, input.fault));
        const summary = chosen.map(
          (w) =>
            `${w.spiffeId}: predicted ${w.predicted.loss} loss, observed ${w.observed.gaps.length === 0 ? 'none' : w.observed.gaps.map((g) => `${s(g.end - g.start)} from +${s(g.start - input.fault.start)}`).join(', ')}`,
        );
        return {
          name: `identity as the TTL model predicts, ±${s(t)}${scope}`,
          met: problems.length === 0,
          evidence: problems.length > 0 ? problems : summary,
        };
      }
      case 'no-identity-loss': {
        const lost = chosen.filter((w) => w.observed.gaps.length > 0);
        return {
          name: `no workload loses its identity${scope}`,
          met: lost.length === 0,
          evidence:
            lost.length > 0
              ? lost.map(
                  (w) =>
                    `${w.spiffeId}: no valid SVID for ${s(w.observed.gaps.reduce((sum, g) => sum + g.end - g.start, 0))} (model: ${w.predicted.loss} loss)`,
                )
              : [`${chosen.length} workload(s) held a valid SVID throughout`],
        };
      }
      case 'recovers': {
        const t = input.defaultTolerance * 1000;
        const latest = Math.max(
          input.fault.end,
          ...chosen.map((w) => w.predicted.recoveredBy?.latest ?? input.fault.end),
        );
        const bound = e.within !== undefined ? input.fault.end + 1000 * e.within : latest + t;
        const problems = chosen.flatMap((w) => {
          const open = w.observed.gaps.find((g) => g.end > bound);
          return open
            ? [
                `${w.spiffeId}: still without identity ${s(bound - input.fault.end)} after healing (until +${s(open.end - input.fault.end)})`,
              ]
            : [];
        });
        return {
          name: `every workload holds a valid SVID within ${s(bound - input.fault.end)} of healing${scope}`,
          met: problems.length === 0,
          evidence:
            problems.length > 0
              ? problems
              : [`recovery checked until +${s(input.recovery.end - input.fault.end)}`],
        };
      }
      case 'handshake-success': {
        const window =
          e.phase === 'steady' ? input.steady : e.phase === 'fault' ? input.fault : input.recovery;
        const { ok, total } = handshakeRate(input.samples, window, new Set(chosen.map((w) => w.spiffeId)));
        const rate = total === 0 ? 0 : ok / total;
        return {
          name: `mTLS handshakes succeed ≥ ${(e.min * 100).toFixed(0)} % during ${e.phase}${scope}`,
          met: total > 0 && rate >= e.min,
          evidence: [
            total === 0
              ? `no handshake was attempted during ${e.phase}`
              : `${ok} of ${total} handshakes succeeded (${(rate * 100).toFixed(1)} %)`,
          ],
        };
      }
      case 'new-authority': {
        const deadline = input.fault.start + 1000 * e.within;
        const problems: string[] = [];
        const seen: string[] = [];
        for (const w of chosen) {
          const before = input.authorityAtInjection[w.spiffeId];
          const next = w.observed.svids.find((v) => v.at >= input.fault.start && v.authority !== before);
          if (!next || next.at > deadline)
            problems.push(
              `${w.spiffeId}: ${next ? `first SVID from a new authority at +${s(next.at - input.fault.start)}` : 'no SVID from a new authority'}, expected within ${s(1000 * e.within)}`,
            );
          else
            seen.push(
              `${w.spiffeId}: new authority ${next.authority.slice(0, 12)}… at +${s(next.at - input.fault.start)}`,
            );
        }
        return {
          name: `${NEW_AUTHORITY_OUTCOME} within ${s(1000 * e.within)}${scope}`,
          met: problems.length === 0,
          evidence: problems.length > 0 ? problems : seen,
        };
      }
      case 'entry-cache-reloads': {
        const counts = input.entryCacheReloadFailures ?? [];
        const failing = counts.filter((c) => c.failures > 0);
        return {
          name: 'every server reloads its entry cache while the fault holds',
          met: counts.length > 0 && failing.length === 0,
          evidence:
            counts.length === 0
              ? ['no server of the datastore was checked']
              : counts.map((c) => `${c.server}: ${c.failures} failed reload(s) during the fault`),
        };
      }
      case 'restore-drops-later-registrations': {
        const within = 1000 * restoreDropWithin(e, input.defaultTolerance, input.entryCacheReload);
        const later = input.laterRegistrations ?? [];
        const problems: string[] = [];
        const seen: string[] = [];
        for (const r of later) {
          const { offeredAt, droppedAt } = offeredAndDropped(
            [...input.samples].sort((a, b) => a.at - b.at),
            r.workload,
            r.spiffeId,
            input.fault,
          );
          if (offeredAt === undefined)
            problems.push(`${r.workload}: never offered ${r.spiffeId} before the loss`);
          else if (droppedAt === undefined || droppedAt - input.fault.end > within)
            problems.push(
              `${r.workload}: still offered ${r.spiffeId} ${droppedAt === undefined ? 'when the drill ended' : `until +${s(droppedAt - input.fault.end)} after the restore`}, expected gone within ${s(within)}`,
            );
          else
            seen.push(
              `${r.workload}: offered ${r.spiffeId} from ${s(input.fault.start - offeredAt)} before the loss; gone +${s(droppedAt - input.fault.end)} after the restore`,
            );
        }
        return {
          name: `identities registered after the backup are gone within ${s(within)} of the restore`,
          met: later.length > 0 && problems.length === 0,
          evidence:
            later.length === 0 ? ['no identity was registered after the backup'] : [...problems, ...seen],
        };
      }
      case 'revoked-svid-refused': {
        const replay = input.revokedReplay;
        return {
          name: 'a peer refuses an SVID chaining to the revoked authority',
          met: replay?.refused === true,
          evidence: [replay ? replay.detail : 'no SVID from before the fault could be replayed'],
        };
      }
    }
  });
}
