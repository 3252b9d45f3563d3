import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { WorkloadReport } from '../activities/deployment-activities.js';
import type { AuthorityKind } from '../deployment/authority-rotation.js';
import type { Topology } from '../deployment/topology/topology.js';
import type { DrillRecord } from '../scenarios/drill-record.js';
import { quick } from './activity-options.js';
import { plural } from '../scenarios/plural.js';
import { failureMessage } from './failure-message.js';
import { rotationWorkflow, type RotationResult } from './rotation-workflow.js';
import { drillWorkflow, type DrillInput } from './drill-workflow.js';
import { spinUp } from './spin-up.js';
import {
  DeploymentId,
  DeploymentStatus,
  OutageClass as OutageClassAttribute,
  Operation,
  Scenario as ScenarioAttribute,
  TrustDomain,
} from './search-attributes.js';

export type Phase =
  'spinning-up' | 'ready' | 'rotating' | 'drilling' | 'tearing-down' | 'torn-down' | 'failed';

export interface DeploymentInput {
  deploymentId: string;
  topology: Topology;
  /** Carried over by continueAsNew: the deployment is already up. */
  carried?: { rotations: RotationResult[]; steps: string[]; workloads?: WorkloadReport };
}

export interface DeploymentStatusView {
  deploymentId: string;
  phase: Phase;
  steps: string[];
  rotations: RotationResult[];
  operation?: string;
  workloads?: WorkloadReport;
  error?: string;
  topology: Topology;
}

export const statusQuery = defineQuery<DeploymentStatusView>('status');
export const rotateUpdate = defineUpdate<RotationResult, [{ kind: AuthorityKind }]>('rotate');
export const teardownUpdate = defineUpdate<{ leftovers: string[] }, [{ keepData?: boolean }]>('teardown');
export const abortSignal = defineSignal<[{ reason: string }]>('abort');
/** Runs a drill on this deployment as a child workflow (`drill/<runId>`); answers with its record. */
export const drillUpdate = defineUpdate<DrillRecord, [Omit<DrillInput, 'deploymentId' | 'suite'>]>('drill');

/**
 * The long-lived entity of one deployment: spins it up (upstream servers, then each downstream
 * through a child workflow, then a check that every workload holds an SVID), then serves operator
 * updates — `rotate`, `drill`, `teardown` — until torn down. A failed spin-up tears down what it started.
 */
export async function deploymentWorkflow(input: DeploymentInput): Promise<DeploymentStatusView> {
  const { deploymentId: id, topology } = input;
  const state: DeploymentStatusView = {
    deploymentId: id,
    phase: input.carried ? 'ready' : 'spinning-up',
    steps: input.carried?.steps ?? [],
    rotations: input.carried?.rotations ?? [],
    topology,
    ...(input.carried?.workloads ? { workloads: input.carried.workloads } : {}),
  };
  let teardownRequest: { keepData?: boolean } | undefined;
  const teardown: { result?: { leftovers: string[] } } = {};
  let rotation: { kind: AuthorityKind; n: number; scope?: CancellationScope } | undefined;
  let drill: { runId: string; scope?: CancellationScope } | undefined;

  // The Web UI's current details are drawn from the phase and the last step together, on every change
  // of either, so they always show the phase `status` reports.
  const showDetails = () => setCurrentDetails(`**${state.phase}**: ${state.steps.at(-1) ?? ''}`);
  const setPhase = (phase: Phase, operation?: string) => {
    state.phase = phase;
    if (operation) state.operation = operation;
    upsertSearchAttributes([
      { key: DeploymentStatus, value: phase },
      ...(operation ? [{ key: Operation, value: operation }] : []),
    ]);
    showDetails();
  };
  const step = (text: string) => {
    state.steps.push(text);
    showDetails();
    log.info(text, { deploymentId: id });
  };

  setHandler(statusQuery, () => state);
  setHandler(abortSignal, ({ reason }) => {
    const running = rotation?.scope ?? drill?.scope;
    if (running) {
      step(`abort requested: ${reason}`);
      running.cancel();
    }
  });
  setHandler(
    drillUpdate,
    async (request) => {
      drill = { runId: request.runId };
      setPhase('drilling', `drill-${request.scenario.name}`);
      step(`drill ${request.runId} (${request.scenario.name}, ${request.outage}) started`);
      try {
        // A cancelled drill (the abort signal) still heals and concludes, as an aborted one.
        const record = await new CancellationScope().run(() => {
          drill!.scope = CancellationScope.current();
          return executeChild(drillWorkflow, {
            workflowId: `drill/${request.runId}`,
            args: [{ ...request, deploymentId: id }],
            staticSummary: `${request.scenario.name} (${request.outage}) on ${id}`,
            staticDetails: request.scenario.description,
            typedSearchAttributes: [
              { key: DeploymentId, value: id },
              { key: ScenarioAttribute, value: request.scenario.name },
              { key: OutageClassAttribute, value: request.outage },
            ],
          });
        });
        step(`drill ${request.runId}: ${record.verdict} (${record.reason})`);
        return record;
      } catch (error) {
        step(`drill ${request.runId} failed: ${failureMessage(error)}`);
        throw ApplicationFailure.nonRetryable(
          `drill ${request.runId} did not complete: ${failureMessage(error)}`,
        );
      } finally {
        drill = undefined;
        setPhase('ready');
      }
    },
    {
      validator: (_request: Omit<DrillInput, 'deploymentId' | 'suite'>) => {
        if (drill) throw new Error(`drill ${drill.runId} is already running`);
        if (rotation) throw new Error(`a rotation (${rotation.kind}) is running`);
        if (state.phase !== 'ready')
          throw new Error(`cannot run a drill while the deployment is ${state.phase}`);
      },
    },
  );
  setHandler(
    rotateUpdate,
    async ({ kind }) => {
      const n = state.rotations.length + 1;
      rotation = { kind, n };
      setPhase('rotating', `rotate-${kind}`);
      step(`rotation ${n} of the ${kind === 'x509' ? 'X.509 authority' : 'JWT key'} started`);
      try {
        const result = await new CancellationScope().run(() => {
          rotation!.scope = CancellationScope.current();
          return executeChild(rotationWorkflow, {
            workflowId: `rotate/${id}/${n}`,
            args: [{ deploymentId: id, kind }],
            staticSummary: `Rotate the ${kind === 'x509' ? 'X.509 authority' : 'JWT key'} of ${id}`,
            staticDetails: `Forced rotation ${n}: prepare → activate → taint → revoke on the root server of trust domain ${topology.trustDomain}.`,
            typedSearchAttributes: [
              { key: DeploymentId, value: id },
              { key: TrustDomain, value: topology.trustDomain },
              { key: Operation, value: `rotate-${kind}` },
            ],
          });
        });
        state.rotations.push(result);
        step(
          `rotation ${n} done: ${(result.servers ?? [{ server: 'upstream server 0', ...result }]).map((s) => `${s.server} ${s.oldAuthority} → ${s.newAuthority}`).join(', ')}`,
        );
        return result;
      } catch (error) {
        step(`rotation ${n} ${isCancellation(error) ? 'aborted' : `failed: ${failureMessage(error)}`}`);
        throw ApplicationFailure.nonRetryable(`rotation ${n} did not complete: ${failureMessage(error)}`);
      } finally {
        rotation = undefined;
        setPhase('ready');
      }
    },
    {
      validator: ({ kind }) => {
        if (kind !== 'x509' && kind !== 'jwt') throw new Error(`unknown authority kind "${String(kind)}"`);
        if (rotation) throw new Error(`a rotation (${rotation.kind}) is already running`);
        if (drill) throw new Error(`drill ${drill.runId} is running: abort it or wait for it`);
        if (state.phase !== 'ready') throw new Error(`cannot rotate while the deployment is ${state.phase}`);
      },
    },
  );
  setHandler(
    teardownUpdate,
    async (request) => {
      teardownRequest = request;
      await condition(() => teardown.result !== undefined);
      return teardown.result!;
    },
    {
      validator: (_request: { keepData?: boolean }) => {
        if (rotation) throw new Error('a rotation is running: abort it or wait for it before teardown');
        if (drill)
          throw new Error(`drill ${drill.runId} is running: abort it or wait for it before teardown`);
        if (state.phase === 'tearing-down' || state.phase === 'torn-down')
          throw new Error(`the deployment is already ${state.phase}`);
      },
    },
  );

  upsertSearchAttributes([
    { key: DeploymentId, value: id },
    { key: TrustDomain, value: topology.trustDomain },
  ]);

  if (!input.carried) {
    setPhase('spinning-up', 'spin-up');
    try {
      state.workloads = await spinUp(id, topology, step);
      step(
        `ready: ${plural(state.workloads.workloads, 'workload')} ${state.workloads.workloads === 1 ? 'holds an SVID' : 'hold SVIDs'}`,
      );
      setPhase('ready', 'idle');
    } catch (error) {
      state.error = failureMessage(error);
      step(`spin-up failed: ${state.error}; tearing down what was started`);
      setPhase('failed', 'compensate');
      await CancellationScope.nonCancellable(() => quick.teardownDeployment({ id }));
      throw ApplicationFailure.nonRetryable(`spin-up of ${id} failed: ${state.error}`);
    }
  }

  // Operator requests arrive as updates; history is kept short with continueAsNew between them.
  await condition(
    () => teardownRequest !== undefined || (workflowInfo().continueAsNewSuggested && !rotation && !drill),
  );
  if (teardownRequest === undefined) {
    await condition(allHandlersFinished);
    await continueAsNew<typeof deploymentWorkflow>({
      deploymentId: id,
      topology,
      carried: {
        rotations: state.rotations,
        steps: state.steps.slice(-50),
        ...(state.workloads ? { workloads: state.workloads } : {}),
      },
    });
  }
  setPhase('tearing-down', 'teardown');
  step('stopping every process and checking nothing is left behind');
  teardown.result = await CancellationScope.nonCancellable(() =>
    quick.teardownDeployment({ id, ...(teardownRequest?.keepData ? { keepData: true } : {}) }),
  );
  step('torn down: no process, socket or port left');
  setPhase('torn-down', 'idle');
  await condition(allHandlersFinished);
  return state;
}
