/**
 * What a drill records and reports: the one definition of a drill's results, shared by the probes'
 * sample files, the results store, the drill workflow and the report renderers. Types only.
 * Every time is milliseconds since the Unix epoch.
 */
import type { Loss, OutageClass } from './ttl-model.js';

export type Verdict = 'passed' | 'failed' | 'errored' | 'aborted';

/** One SVID a probe received on its FetchX509SVID stream. */
export interface SvidSample {
  kind: 'svid';
  at: number;
  workload: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  /** Hex subject key id of the CA that signed the leaf (its authority key id). */
  authority: string;
}

/** One mTLS handshake from a probe to its peer, with the SVIDs and bundle it held at the time. */
export interface HandshakeSample {
  kind: 'handshake';
  at: number;
  workload: string;
  peer: string;
  ok: boolean;
  latencyMs: number;
  error?: string;
}

/** One JWT-SVID fetched from the Workload API and validated against the JWT bundle. */
export interface JwtSample {
  kind: 'jwt';
  at: number;
  workload: string;
  ok: boolean;
  latencyMs: number;
  expiresAt?: number;
  error?: string;
}

/** The probe's Workload API stream broke or came back. */
export interface StreamSample {
  kind: 'stream';
  at: number;
  workload: string;
  ok: boolean;
  error?: string;
}

/** The SPIFFE IDs the agent offered the workload changed (an entry was registered or removed). */
export interface IdentitiesSample {
  kind: 'identities';
  at: number;
  workload: string;
  spiffeIds: string[];
}

export type ProbeSample = SvidSample | HandshakeSample | JwtSample | StreamSample | IdentitiesSample;

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
