import {
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { DrillPlanView } from '../scenarios/drill-plan.js';
import type { DrillRecord, InjectionRecord, Verdict } from '../scenarios/drill-record.js';
import { watchAfterHealSeconds } from '../scenarios/expectations.js';
import type { DrillWindows, ForcedVerdict } from '../scenarios/judge.js';
import type { Scenario } from '../scenarios/scenario.js';
import type { OutageClass } from '../scenarios/ttl-model.js';
import { drillHold, drillLeased, drillQuick, drillWaits } from './activity-options.js';
import { failureMessage } from './failure-message.js';
import { plural } from '../scenarios/plural.js';
import {
  DeploymentId,
  OutageClass as OutageClassAttribute,
  Scenario as ScenarioAttribute,
  Verdict as VerdictAttribute,
} from './search-attributes.js';

export interface DrillInput {
  runId: string;
  deploymentId: string;
  scenario: Scenario;
  outage: OutageClass;
  /** The suite run this drill belongs to, for the results store. */
  suite?: string;
}

export type DrillPhase =
  'planning' | 'steady-state' | 'injecting' | 'holding' | 'healing' | 'recovering' | 'concluding' | 'done';

export interface DrillStatusView {
  runId: string;
  phase: DrillPhase;
  steps: string[];
  /** When each step was taken and in which phase, index for index (absent in runs recorded before). */
  stepTimes?: { at: number; phase: DrillPhase }[];
  plan?: DrillPlanView;
  injections: InjectionRecord[];
  /** Epoch ms at which the hold ends, while holding. */
  holdUntil?: number;
  verdict?: Verdict;
  reason?: string;
}

export const drillStatusQuery = defineQuery<DrillStatusView>('drillStatus');
export const abortDrillSignal = defineSignal<[{ reason: string }]>('abortDrill');

/** Which downstream intermediates cap issuance differently at injection than at planning, in words. */
function capsMoved(planned: DrillPlanView['workloads'], now: DrillPlanView['workloads']): string | undefined {
  const moved = new Map<string, number | undefined>();
  for (const w of now) {
    const before = planned.find((p) => p.spiffeId === w.spiffeId);
    if (before?.caNotAfter !== w.caNotAfter) moved.set(w.group, w.caNotAfter);
  }
  if (moved.size === 0) return undefined;
  return [...moved]
    .map(([group, at]) =>
      at === undefined
        ? `${group}'s issuance is no longer capped by an intermediate`
        : `${group} can sign until ${new Date(at).toISOString()} (its intermediates changed)`,
    )
    .join('; ');
}

/** How long a fault survives without its lease being renewed: the watchdog heals it after that. */
export const LEASE_MS = 20_000;
const RENEW_EVERY_MS = 4_000;

/** The verdicts the workflow decides itself; passed or failed is the judge's, from the samples. */
class Verdicted extends Error {
  constructor(
    readonly verdict: ForcedVerdict['verdict'],
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * One drill, the same runbook for every scenario: steady state → plan and predictions → inject →
 * confirm the fault took effect → hold on a durable timer (renewing the fault's lease, watching the
 * stop conditions) → heal (always, verified) → recovery → steady state again → verdict.
 */
export async function drillWorkflow(input: DrillInput): Promise<DrillRecord> {
  const { runId, deploymentId: id, scenario } = input;
  const state: DrillStatusView = { runId, phase: 'planning', steps: [], stepTimes: [], injections: [] };
  const startedAt = Date.now();
  const windows: DrillWindows = {};
  let abortReason: string | undefined;
  let injected = false;
  const work = new CancellationScope();

  const step = (text: string) => {
    state.steps.push(text);
    state.stepTimes!.push({ at: Date.now(), phase: state.phase });
    setCurrentDetails(`**${state.phase}** — ${text}`);
    log.info(text, { runId });
  };
  const enter = (phase: DrillPhase, text: string) => {
    state.phase = phase;
    step(text);
  };
  const record = (entry: Omit<InjectionRecord, 'at'> & { at?: number }) =>
    state.injections.push({ ...entry, at: entry.at ?? Date.now() });

  setHandler(drillStatusQuery, () => state);
  upsertSearchAttributes([
    { key: DeploymentId, value: id },
    { key: ScenarioAttribute, value: scenario.name },
    { key: OutageClassAttribute, value: input.outage },
  ]);
  setHandler(abortDrillSignal, ({ reason }) => {
    if (state.phase === 'concluding' || state.phase === 'done') return;
    abortReason = reason;
    step(`abort requested: ${reason}`);
    work.cancel();
  });

  let outcome: Partial<ForcedVerdict> = {};
  let revokedReplay: { refused: boolean; detail: string } | undefined;
  try {
    await work.run(async () => {
      enter('planning', `resolving ${scenario.fault.kind} on deployment ${id} at outage ${input.outage}`);
      const plan = await drillQuick.prepareDrill({
        runId,
        deploymentId: id,
        fault: scenario.fault,
        outage: input.outage,
        scenario,
      });
      state.plan = plan;
      step(
        `hold ${plan.outageSeconds} s on ${plan.targets.join(', ')}; before the SVIDs held are known, the model predicts ${plan.predictedLosses} of ${plural(plan.workloads.length, 'workload')} may lose identity in ${plan.outageSeconds} s (judged again over the fault as held)`,
      );

      // A restore needs its backup first: the fault is the loss of what happened after it.
      const backupTakenAt =
        scenario.fault.kind === 'db-restore'
          ? await drillQuick
              .prepareFault({ deploymentId: id, runId, fault: scenario.fault })
              .then((prepared) => {
                step(prepared.detail!);
                return prepared.backupTakenAt!;
              })
          : undefined;

      enter('steady-state', `waiting for ${scenario.steady} s of steady state`);
      const steady = await drillWaits.steadyState({ deploymentId: id, seconds: scenario.steady });
      windows.steady = steady.window;
      if (!steady.ok) throw new Verdicted('errored', `no steady state before the fault: ${steady.detail}`);
      if (backupTakenAt !== undefined && scenario.fault.kind === 'db-restore') {
        const due = backupTakenAt + scenario.fault.backupAge * 1000;
        if (Date.now() < due) {
          step(`waiting until the backup is ${scenario.fault.backupAge} s old`);
          await sleep(due - Date.now(), { summary: `until the backup is ${scenario.fault.backupAge} s old` });
        }
      }

      enter('injecting', `injecting ${scenario.fault.kind}`);
      record({ action: 'inject', state: 'started', detail: plan.targets.join(', ') });
      injected = true;
      const inject = await drillLeased.injectFault({
        deploymentId: id,
        runId,
        fault: scenario.fault,
        leaseMs: LEASE_MS,
      });
      record({ action: 'inject', state: 'done', at: inject.at, detail: inject.detail });
      if (inject.workloads) {
        const moved = capsMoved(plan.workloads, inject.workloads);
        plan.workloads = inject.workloads;
        if (moved) step(`since planning, ${moved}`);
      }
      const confirmed = await drillLeased.confirmFault({ deploymentId: id, runId, fault: scenario.fault });
      if (!confirmed.injected)
        throw new Verdicted('errored', `the fault did not take effect: ${confirmed.detail}`);
      step(`fault confirmed: ${confirmed.detail}`);
      windows.fault = { start: inject.at, end: inject.at };

      const holdUntil = inject.at + plan.outageSeconds * 1000;
      state.holdUntil = holdUntil;
      enter('holding', `holding the fault until +${plan.outageSeconds} s`);
      while (Date.now() < holdUntil) {
        await sleep(Math.min(RENEW_EVERY_MS, holdUntil - Date.now()), {
          summary: `holding ${scenario.fault.kind}: until the next lease renewal (held until +${plan.outageSeconds} s)`,
        });
        await drillHold.renewLease({ deploymentId: id, runId, leaseMs: LEASE_MS });
        const stop = await drillHold.checkStop({
          deploymentId: id,
          since: inject.at,
          plan,
          stopConditions: scenario.stopConditions,
        });
        if (stop) {
          abortReason = `stop condition: ${stop}`;
          step(abortReason);
          throw new Verdicted('aborted', abortReason);
        }
      }
    });
  } catch (error) {
    if (error instanceof Verdicted) outcome = { verdict: error.verdict, reason: error.message };
    else if (isCancellation(error) || abortReason)
      outcome = { verdict: 'aborted', reason: abortReason ?? 'the drill was cancelled' };
    else outcome = { verdict: 'errored', reason: failureMessage(error) };
    step(`${outcome.verdict}: ${outcome.reason}`);
  }

  // Healing runs whatever happened above, and cannot be cancelled.
  await CancellationScope.nonCancellable(async () => {
    if (!injected) return;
    enter('healing', `healing ${scenario.fault.kind}`);
    record({ action: 'heal', state: 'started', detail: scenario.fault.kind });
    try {
      const healed = await drillQuick.healFault({ deploymentId: id, runId, fault: scenario.fault });
      if (windows.fault) windows.fault.end = healed.at;
      const verified = await drillWaits.verifyHealed({ deploymentId: id, fault: scenario.fault });
      if (!verified.healed) throw new Error(`the deployment is not whole after healing: ${verified.detail}`);
      record({
        action: 'heal',
        state: 'done',
        at: healed.at,
        detail: `${healed.detail}; ${verified.detail}`,
      });
      step(`healed: ${healed.detail}`);
    } catch (error) {
      const why = failureMessage(error);
      record({ action: 'heal', state: 'failed', detail: why });
      outcome = { verdict: 'errored', reason: `healing failed: ${why}` };
      step(outcome.reason!);
      return;
    }
    if (outcome.verdict || !windows.fault) return;
    try {
      enter('recovering', 'waiting for every workload to hold a valid SVID and shake hands again');
      const recovery = await drillWaits.waitRecovered({
        deploymentId: id,
        since: windows.fault.end,
        plan: state.plan!,
        faultStart: windows.fault.start,
      });
      windows.recovery = { start: windows.fault.end, end: recovery.at };
      step(
        recovery.ok
          ? `recovered at +${((recovery.at - windows.fault.end) / 1000).toFixed(1)} s`
          : recovery.detail,
      );
      if (recovery.predictedLosses !== undefined)
        step(
          `the fault was held ${((windows.fault.end - windows.fault.start) / 1000).toFixed(1)} s (planned ${state.plan!.outageSeconds} s); from the SVIDs held when it began, the model predicts ${recovery.predictedLosses} of ${plural(state.plan!.workloads.length, 'workload')} may lose identity`,
        );
      if (scenario.expectations.some((e) => e.expect === 'revoked-svid-refused'))
        revokedReplay = await drillQuick.replayRevokedSvid({
          deploymentId: id,
          runId,
          before: windows.fault.start,
        });
      const after = await drillWaits.steadyState({
        deploymentId: id,
        seconds: scenario.steady,
        notBefore: recovery.at,
        notUntil:
          windows.fault.end +
          1000 *
            watchAfterHealSeconds(
              scenario.expectations,
              state.plan!.tolerance,
              state.plan!.policy.entryCacheReload,
            ),
      });
      windows.recovery.end = after.window.end;
      if (!after.ok) step(`no steady state after recovery: ${after.detail}`);
    } catch (error) {
      outcome = { verdict: 'errored', reason: `recovery could not be observed: ${failureMessage(error)}` };
      step(outcome.reason!);
    }
  });

  enter('concluding', 'judging the observations against the predictions and storing the run');
  const result = await CancellationScope.nonCancellable(() =>
    drillQuick.concludeDrill({
      runId,
      deploymentId: id,
      scenario,
      outage: input.outage,
      plan: state.plan,
      startedAt,
      windows,
      injections: state.injections,
      ...(outcome.verdict ? { forced: { verdict: outcome.verdict, reason: outcome.reason! } } : {}),
      ...(revokedReplay ? { revokedReplay } : {}),
      ...(input.suite ? { suite: input.suite } : {}),
    }),
  );
  state.verdict = result.verdict;
  state.reason = result.reason;
  upsertSearchAttributes([{ key: VerdictAttribute, value: result.verdict }]);
  enter('done', `verdict ${result.verdict}: ${result.reason}`);
  return result;
}
