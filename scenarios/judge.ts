/**
 * The judge of a drill: from the probes' samples, the plan's predictions and the drill's windows to
 * whether the deployment is steady, whether a stop condition holds, who has not recovered, each
 * expectation's outcome and the verdict. Pure, without a clock (`now` is an input): the drill
 * activities gather what it reads and store what it returns, and tests drive it on samples alone.
 */
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import type {
  ExpectationOutcome,
  PredictedIdentity,
  TimeWindow,
  Verdict,
  WorkloadOutcome,
} from './drill-record.js';
import { predictIdentity, type DrillPlanView, type PlannedWorkload } from './drill-plan.js';
import { evaluateExpectations, type EvaluationInput } from './expectations.js';
import { heldAt, observeIdentity, svidsByWorkload } from './observed-identity.js';
import type { Expectation, StopCondition } from './scenario.js';

/** The phases a drill reached: steady state, the fault held (injected → healed), recovery. */
export interface DrillWindows {
  steady?: TimeWindow;
  fault?: TimeWindow;
  recovery?: TimeWindow;
}

/** What the workflow itself decides, from what happened to it: the samples are not asked. */
export interface ForcedVerdict {
  verdict: Extract<Verdict, 'errored' | 'aborted'>;
  reason: string;
}

/**
 * The model's prediction for each workload over the fault as it was held, from the SVID each held
 * when it began: the one computation behind a drill's progress line after healing and its verdict.
 */
export function predictHeld(
  samples: ProbeSample[],
  plan: Pick<DrillPlanView, 'workloads' | 'policy'>,
  fault: TimeWindow,
): Map<string, PredictedIdentity> {
  const svids = svidsByWorkload(samples);
  return new Map(
    plan.workloads.map((w) => [
      w.spiffeId,
      predictIdentity(w, heldAt(svids.get(w.spiffeId), fault.start), fault, plan.policy),
    ]),
  );
}

/** How far back handshakes count for a `handshake-failures` stop condition, and how many make a rate. */
const RECENT_MS = 10_000;
const RECENT_MIN_HANDSHAKES = 5;

/** Steady state over `window`: every workload held a valid SVID throughout and its handshakes succeeded. */
export function steadyProblems(samples: ProbeSample[], workloads: string[], window: TimeWindow): string[] {
  const problems: string[] = [];
  const svids = svidsByWorkload(samples);
  for (const w of workloads) {
    const observed = observeIdentity(
      samples.filter((s) => s.workload === w),
      window,
    );
    if (!heldAt(svids.get(w), window.start)) problems.push(`${w}: no SVID yet`);
    else if (observed.gaps.length > 0) problems.push(`${w}: without a valid SVID for a while`);
    else if (observed.handshakes.ok === 0) problems.push(`${w}: no successful handshake`);
    else if (observed.handshakes.failed > 0)
      problems.push(`${w}: ${observed.handshakes.failed} failed handshake(s)`);
  }
  return problems;
}

/** The first of `conditions` that holds at `now` for a fault injected at `since`, in words, or nothing. */
export function stopConditionHolds(input: {
  samples: ProbeSample[];
  conditions: StopCondition[];
  plan: Pick<DrillPlanView, 'workloads' | 'policy' | 'tolerance'>;
  since: number;
  now: number;
}): string | undefined {
  const { samples, plan, since, now } = input;
  const svids = svidsByWorkload(samples);
  for (const condition of input.conditions) {
    if (condition.stop === 'unpredicted-identity-loss') {
      for (const w of plan.workloads) {
        const held = heldAt(svids.get(w.spiffeId), since);
        const predicted = predictIdentity(w, held, { start: since, end: now }, plan.policy);
        if (predicted.loss !== 'never') continue;
        const observed = observeIdentity(
          samples.filter((s) => s.workload === w.spiffeId),
          { start: since, end: now },
        );
        const long = observed.gaps.find((g) => g.end - g.start > plan.tolerance * 1000);
        if (long)
          return `${w.spiffeId} lost its identity for ${((long.end - long.start) / 1000).toFixed(1)} s, which the model does not predict`;
      }
    } else {
      const chosen = new Set(
        plan.workloads
          .filter((w) => !condition.groups || condition.groups.includes(w.group))
          .map((w) => w.spiffeId),
      );
      const recent = samples.filter(
        (s) => s.kind === 'handshake' && chosen.has(s.workload) && s.at > now - RECENT_MS,
      );
      const failed = recent.filter((s) => s.kind === 'handshake' && !s.ok).length;
      if (recent.length >= RECENT_MIN_HANDSHAKES && failed / recent.length > condition.max)
        return `${failed} of ${recent.length} handshakes failed in the last 10 s (limit ${(condition.max * 100).toFixed(0)} %)`;
    }
  }
  return undefined;
}

/** The workloads not yet recovered at `now` from a fault healed at `since`: no valid SVID, or no handshake since. */
export function unrecovered(
  samples: ProbeSample[],
  workloads: PlannedWorkload[],
  since: number,
  now: number,
): PlannedWorkload[] {
  const svids = svidsByWorkload(samples);
  return workloads.filter((w) => {
    const held = heldAt(svids.get(w.spiffeId), now);
    const shook = samples.some(
      (s) => s.kind === 'handshake' && s.workload === w.spiffeId && s.ok && s.at > since,
    );
    return !held || held.notAfter <= now || !shook;
  });
}

/** Passed when every expectation is met; else failed, on the first one missed. */
export function verdictOf(expectations: ExpectationOutcome[]): { verdict: Verdict; reason: string } {
  const missed = expectations.find((e) => !e.met);
  if (!missed) return { verdict: 'passed', reason: `${expectations.length} expectation(s) met` };
  return { verdict: 'failed', reason: `${missed.name}: ${missed.evidence[0] ?? 'missed'}` };
}

export interface DrillJudgement {
  verdict: Verdict;
  reason: string;
  expectations: ExpectationOutcome[];
  workloads: WorkloadOutcome[];
}

/**
 * A drill's outcome. Every planned workload is observed from the steady state on and predicted from
 * the SVID it held at injection; the expectations are checked once the drill reached recovery. A
 * forced verdict stands over the expectations; without one, a drill that never reached recovery errored.
 */
export function judgeDrill(
  input: {
    samples: ProbeSample[];
    expectations: Expectation[];
    plan?: Pick<DrillPlanView, 'workloads' | 'policy' | 'tolerance'>;
    startedAt: number;
    finishedAt: number;
    windows: DrillWindows;
    forced?: ForcedVerdict;
  } & Pick<EvaluationInput, 'revokedReplay' | 'laterRegistrations' | 'entryCacheReloadFailures'>,
): DrillJudgement {
  const { samples, plan } = input;
  const { steady, fault, recovery } = input.windows;
  const svids = svidsByWorkload(samples);
  const observeFrom = steady?.start ?? input.startedAt;
  const predicted = fault && plan ? predictHeld(samples, plan, fault) : undefined;
  const workloads: WorkloadOutcome[] = (plan?.workloads ?? []).map((w) => ({
    spiffeId: w.spiffeId,
    group: w.group,
    predicted: predicted?.get(w.spiffeId) ?? { loss: 'never' },
    observed: observeIdentity(
      samples.filter((s) => s.workload === w.spiffeId),
      { start: observeFrom, end: recovery?.end ?? input.finishedAt },
    ),
  }));
  if (!(plan && steady && fault && recovery))
    return {
      ...(input.forced ?? { verdict: 'errored', reason: 'the drill ended before its fault was held' }),
      expectations: [],
      workloads,
    };
  const authorityAtInjection: Record<string, string> = {};
  for (const w of workloads) {
    const held = heldAt(svids.get(w.spiffeId), fault.start);
    if (held) authorityAtInjection[w.spiffeId] = held.authority;
  }
  const expectations = evaluateExpectations({
    expectations: input.expectations,
    workloads,
    samples,
    steady,
    fault,
    recovery,
    defaultTolerance: plan.tolerance,
    ...(plan.policy.entryCacheReload !== undefined ? { entryCacheReload: plan.policy.entryCacheReload } : {}),
    authorityAtInjection,
    ...(input.revokedReplay ? { revokedReplay: input.revokedReplay } : {}),
    ...(input.laterRegistrations ? { laterRegistrations: input.laterRegistrations } : {}),
    ...(input.entryCacheReloadFailures ? { entryCacheReloadFailures: input.entryCacheReloadFailures } : {}),
  });
  return { ...(input.forced ?? verdictOf(expectations)), expectations, workloads };
}
