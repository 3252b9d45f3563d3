import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Topology } from '../deployment/topology/topology.js';
import type { DrillRecord, SuiteRecord } from '../scenarios/drill-record.js';
import type { Scenario } from '../scenarios/scenario.js';
import type { OutageClass } from '../scenarios/ttl-model.js';
import { drillQuick, quick } from './activity-options.js';
import { failureMessage } from './failure-message.js';
import { abortDrillSignal, drillWorkflow } from './drill-workflow.js';
import {
  DeploymentId,
  OutageClass as OutageClassAttribute,
  Scenario as ScenarioAttribute,
} from './search-attributes.js';
import { spinUp } from './spin-up.js';

export interface SuiteInput {
  suite: string;
  drills: { scenario: Scenario; outage: OutageClass }[];
  /** Run on this deployment; or, with `topology`, on a fresh one spun up and torn down here. */
  deploymentId?: string;
  topology?: Topology;
}

export interface SuiteStatusView {
  suiteRunId: string;
  deploymentId: string;
  steps: string[];
  done: { runId: string; scenario: string; outage: OutageClass; verdict: string }[];
  total: number;
  /** The drill running now, so the CLI and the UI can follow it. */
  currentRunId?: string;
}

export const suiteStatusQuery = defineQuery<SuiteStatusView>('suiteStatus');
/** Stop the suite: the running drill aborts (and heals), no further drill starts, a fresh deployment is torn down. */
export const stopSuiteSignal = defineSignal<[{ reason: string }]>('stopSuite');

/** A suite run's id, from its workflow id (a Schedule appends the time to it). */
export function suiteRunIdOf(workflowId: string): string {
  return workflowId
    .replace(/^suite\//, '')
    .replace(/[^a-z0-9-]/gi, '-')
    .toLowerCase();
}

/**
 * Many drills, one after another, each a child workflow: they share the deployment and its probes,
 * and a fault on the upstream reaches every downstream, so none may overlap. On a fresh deployment
 * the suite spins it up first and always tears it down.
 */
export async function suiteWorkflow(input: SuiteInput): Promise<SuiteRecord> {
  const info = workflowInfo();
  const suiteRunId = suiteRunIdOf(info.workflowId);
  const fresh = input.deploymentId === undefined;
  if (fresh && !input.topology)
    throw ApplicationFailure.nonRetryable('a suite needs a deployment id or a topology', 'BadInput');
  const id = input.deploymentId ?? `s-${info.runId.replace(/-/g, '').slice(0, 12)}`;
  const state: SuiteStatusView = {
    suiteRunId,
    deploymentId: id,
    steps: [],
    done: [],
    total: input.drills.length,
  };
  const step = (text: string) => {
    state.steps.push(text);
    setCurrentDetails(`Suite **${input.suite}**: ${text}`);
    log.info(text, { suiteRunId });
  };
  setHandler(suiteStatusQuery, () => state);
  let stopped: string | undefined;
  setHandler(stopSuiteSignal, ({ reason }) => {
    if (stopped) return;
    stopped = reason;
    step(`stop requested: ${reason}`);
    if (state.currentRunId)
      void getExternalWorkflowHandle(`drill/${state.currentRunId}`)
        .signal(abortDrillSignal, { reason })
        .catch((error: Error) => log.warn(`could not abort drill ${state.currentRunId}: ${error.message}`));
  });
  upsertSearchAttributes([{ key: DeploymentId, value: id }]);

  const startedAt = Date.now();
  const drills: DrillRecord[] = [];
  try {
    // A results store made for the first time takes seconds: not between the first two drills.
    // Its failure is kept, not thrown, so that a spin-up failing first is what the suite reports.
    const resultsReady = drillQuick.prepareResultsStore().then(
      () => undefined,
      (error: Error) => error,
    );
    if (fresh) {
      step(`spinning up deployment ${id} (${input.topology!.name})`);
      await spinUp(id, input.topology!, step);
    }
    const storeFailed = await resultsReady;
    if (storeFailed)
      throw ApplicationFailure.nonRetryable(
        `the results store cannot be used, so no drill would be recorded: ${failureMessage(storeFailed)}`,
        'ResultsStore',
      );
    for (const [i, { scenario, outage }] of input.drills.entries()) {
      if (stopped) {
        step(`stopped before drill ${i + 1}: ${stopped}`);
        break;
      }
      const runId = `${suiteRunId}-${i + 1}-${scenario.name}-${outage}`;
      state.currentRunId = runId;
      step(`drill ${i + 1}/${input.drills.length}: ${scenario.name} at ${outage}`);
      const record = await executeChild(drillWorkflow, {
        workflowId: `drill/${runId}`,
        args: [{ runId, deploymentId: id, scenario, outage, suite: suiteRunId }],
        staticSummary: `${scenario.name} (${outage}) on ${id}`,
        staticDetails: scenario.description,
        typedSearchAttributes: [
          { key: DeploymentId, value: id },
          { key: ScenarioAttribute, value: scenario.name },
          { key: OutageClassAttribute, value: outage },
        ],
      });
      drills.push(record);
      state.done.push({ runId, scenario: scenario.name, outage, verdict: record.verdict });
      step(`drill ${i + 1}: ${record.verdict} — ${record.reason}`);
    }
  } catch (error) {
    step(isCancellation(error) ? 'suite cancelled' : `suite failed: ${failureMessage(error)}`);
    throw error;
  } finally {
    state.currentRunId = undefined;
    if (fresh)
      await CancellationScope.nonCancellable(async () => {
        step(`tearing down ${id}`);
        await quick.teardownDeployment({ id });
      });
  }
  return {
    suite: input.suite,
    startedAt,
    finishedAt: Date.now(),
    drills,
    ...(stopped ? { stopped: { reason: stopped, notRun: input.drills.length - drills.length } } : {}),
  };
}
