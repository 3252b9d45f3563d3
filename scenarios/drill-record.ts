/**
 * What a drill records and reports: the one definition of a drill's results, shared by the results store, the drill workflow and the report renderers. Types only.
 * Every time is milliseconds since the Unix epoch.
 */
import type { Loss, OutageClass } from './ttl-model.js';

export type Verdict = 'passed' | 'failed' | 'errored' | 'aborted';

export interface TimeWindow {
  start: number;
  end: number;
}

/** What the TTL model expects of one workload, in absolute time. */
export interface PredictedIdentity {
  loss: Loss;
  lossAt?: number;
  /** When it holds a valid SVID again, at the earliest and the latest (when loss is not 'never'). */
  recoveredBy?: { earliest: number; latest: number };
}

/** What the probes saw of one workload. */
export interface ObservedIdentity {
  /** Windows in which the workload held no valid X509-SVID (none held, or the newest had expired). */
  gaps: TimeWindow[];
  /** SVIDs received, in order. */
  svids: { serial: string; notBefore: number; notAfter: number; at: number; authority: string }[];
  handshakes: { ok: number; failed: number };
  jwt: { ok: number; failed: number };
}

export interface WorkloadOutcome {
  spiffeId: string;
  /** Which server group issues its SVIDs: 'upstream' or a downstream name. */
  group: string;
  predicted: PredictedIdentity;
  observed: ObservedIdentity;
}

/** One expectation of the scenario, checked against predictions and observations. */
export interface ExpectationOutcome {
  name: string;
  met: boolean;
  /** What was compared, in numbers, so a failure explains itself. */
  evidence: string[];
}

/** One step of the fault, recorded before and after it runs. */
export interface InjectionRecord {
  action: 'inject' | 'heal';
  state: 'started' | 'done' | 'failed';
  at: number;
  detail: string;
}

export interface DrillRecord {
  runId: string;
  scenario: string;
  description: string;
  outage: OutageClass;
  /** Seconds the fault is held. */
  outageSeconds: number;
  deploymentId: string;
  topology: string;
  verdict: Verdict;
  /** One line on why: the first missed expectation, the error, or the abort reason. */
  reason: string;
  startedAt: number;
  finishedAt: number;
  /** Phases: steady state, the fault held (injected → healed), recovery. Absent if never reached. */
  steady?: TimeWindow;
  fault?: TimeWindow;
  recovery?: TimeWindow;
  injections: InjectionRecord[];
  expectations: ExpectationOutcome[];
  workloads: WorkloadOutcome[];
  /** Free-form findings of the scenario (e.g. what a restored backup did not have). */
  findings: string[];
}

export interface SuiteRecord {
  suite: string;
  startedAt: number;
  finishedAt: number;
  drills: DrillRecord[];
  /** Set when an operator stopped the suite: why, and how many of its drills never started. */
  stopped?: { reason: string; notRun: number };
}
