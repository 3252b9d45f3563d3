import { ApplicationFailure } from '@temporalio/activity';
import type { DrillActivities } from '../../activities/drill-activities.js';
import type { DrillPlanView } from '../../scenarios/drill-plan.js';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';
import type { DrillRecord } from '../../scenarios/drill-record.js';
import { judgeDrill, stopConditionHolds } from '../../scenarios/judge.js';

/**
 * The drill activities as canned answers, for driving the drill and suite workflows on a real Temporal
 * server in seconds. What a drill meets is chosen by a word in its run id (a suite's run ids hold the
 * scenario's name): `loses-identity` (a workload, while the fault holds), `no-take` (the fault is
 * not seen from outside), `heal-fails`, `holds-long` (a minute's hold, to be aborted); any other drill
 * passes, after a hold of half a second. Stop conditions and the verdict are the real judge's, on generated samples.
 */
const BEHAVIOURS = ['loses-identity', 'no-take', 'heal-fails', 'holds-long'] as const;
type Behaviour = (typeof BEHAVIOURS)[number] | 'passes';

const behaviourOf = (runId: string): Behaviour => BEHAVIOURS.find((b) => runId.includes(b)) ?? 'passes';

export const UPSTREAM_WORKLOAD = 'spiffe://drill.test/upstream/agent-0/workload-0';
export const EAST_WORKLOAD = 'spiffe://drill.test/east/agent-0/workload-0';

/** SVIDs of 20 s renewed every 10 s over [from, to), and a handshake every 500 ms, all fine. */
function healthy(workload: string, from: number, to: number): ProbeSample[] {
  const samples: ProbeSample[] = [];
  for (let at = from - 10_000; at < to; at += 10_000)
    samples.push({
      kind: 'svid',
      at,
      workload,
      serial: `${workload}-${at}`,
      notBefore: at - 10_000,
      notAfter: at + 20_000,
      authority: 'a1b2',
    });
  for (let at = from; at < to; at += 500)
    samples.push({
      kind: 'handshake',
      at,
      workload,
      peer: 'spiffe://drill.test/peer',
      ok: true,
      latencyMs: 2,
    });
  return samples;
}

/** `workload`'s SVID lapses 100 ms into the fault and the next arrives 200 ms after healing. */
function lostDuring(workload: string, fault: { start: number; end: number }): ProbeSample[] {
  return [fault.start + 100 - 20_000, fault.end + 200].map((at) => ({
    kind: 'svid' as const,
    at,
    workload,
    serial: `${workload}-${at}`,
    notBefore: at - 10_000,
    notAfter: at + 20_000,
    authority: 'a1b2',
  }));
}

export interface MockedDrillActivities {
  activities: Partial<DrillActivities>;
  /** What each drill's conclusion was asked, by run id. */
  concluded: Map<string, Parameters<DrillActivities['concludeDrill']>[0]>;
}

export function mockedDrillActivities(): MockedDrillActivities {
  const concluded: MockedDrillActivities['concluded'] = new Map();
  const activities = {
    async prepareResultsStore() {},

    async prepareDrill(input) {
      const plan: DrillPlanView = {
        outageSeconds: behaviourOf(input.runId) === 'holds-long' ? 60 : 0.5,
        policy: { x509Ttl: 20, syncInterval: 5, backdate: 10 },
        tolerance: 6,
        targets: ['load balancer lb'],
        workloads: [
          { spiffeId: UPSTREAM_WORKLOAD, group: 'upstream', effect: 'none' },
          { spiffeId: EAST_WORKLOAD, group: 'east', effect: 'none' },
        ],
        predictedLosses: 0,
      };
      return plan;
    },

    async steadyState(input) {
      const end = Date.now();
      return { ok: true, window: { start: end - input.seconds * 1000, end }, detail: '2 workload(s) steady' };
    },

    async injectFault() {
      return { at: Date.now(), detail: 'stopped load balancer lb' };
    },

    async confirmFault(input) {
      return behaviourOf(input.runId) === 'no-take'
        ? { injected: false, detail: 'load balancer lb still accepts on :18081' }
        : { injected: true, detail: 'load balancer lb is not accepting on :18081' };
    },

    async renewLease() {},

    async checkStop(input) {
      // Every handshake of the last seconds failed: only a scenario with a stop condition on it stops.
      const now = Date.now();
      const failing: ProbeSample[] = [];
      for (let at = now - 5_000; at < now; at += 500)
        failing.push({
          kind: 'handshake',
          at,
          workload: EAST_WORKLOAD,
          peer: UPSTREAM_WORKLOAD,
          ok: false,
          latencyMs: 1,
        });
      return stopConditionHolds({
        samples: failing,
        conditions: input.stopConditions,
        plan: input.plan,
        since: input.since,
        now,
      });
    },

    async healFault(input) {
      if (behaviourOf(input.runId) === 'heal-fails')
        throw ApplicationFailure.nonRetryable('load balancer lb did not start again', 'HealFailed');
      return { at: Date.now(), detail: 'started load balancer lb' };
    },

    async verifyHealed() {
      return { healed: true, detail: 'load balancer lb accepts on :18081 again' };
    },

    async waitRecovered() {
      return { ok: true, at: Date.now(), detail: 'recovered' };
    },

    async concludeDrill(input): Promise<DrillRecord> {
      concluded.set(input.runId, input);
      const finishedAt = Date.now();
      const { fault } = input.windows;
      const samples = [
        ...healthy(UPSTREAM_WORKLOAD, input.startedAt, finishedAt),
        ...(behaviourOf(input.runId) === 'loses-identity' && fault
          ? lostDuring(EAST_WORKLOAD, fault)
          : healthy(EAST_WORKLOAD, input.startedAt, finishedAt)),
      ];
      const judged = judgeDrill({
        samples,
        expectations: input.scenario.expectations,
        ...(input.plan ? { plan: input.plan } : {}),
        startedAt: input.startedAt,
        finishedAt,
        windows: input.windows,
        ...(input.forced ? { forced: input.forced } : {}),
      });
      return {
        runId: input.runId,
        scenario: input.scenario.name,
        description: input.scenario.description,
        outage: input.outage,
        outageSeconds: input.plan?.outageSeconds ?? 0,
        deploymentId: input.deploymentId,
        topology: 'mocked',
        verdict: judged.verdict,
        reason: judged.reason,
        startedAt: input.startedAt,
        finishedAt,
        ...input.windows,
        injections: input.injections,
        expectations: judged.expectations,
        workloads: judged.workloads,
        findings: [],
      };
    },
  } satisfies Partial<DrillActivities>;
  return { activities, concluded };
}
