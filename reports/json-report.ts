/**
 * The JSON report: the suite record and every drill's probe samples, for machines. Objects are rebuilt
 * field by field in the order drill-record.ts declares them, whatever order the input was built in,
 * so two reports of the same results are byte-identical and diff cleanly.
 */
import type {
  DrillRecord,
  ExpectationOutcome,
  InjectionRecord,
  ObservedIdentity,
  PredictedIdentity,
  SuiteRecord,
  TimeWindow,
  WorkloadOutcome,
} from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';

export interface JsonReport {
  suite: SuiteRecord;
  /** Every drill's samples by run id, in the suite's drill order, each list in time order. */
  samples: Record<string, ProbeSample[]>;
}

function window(w: TimeWindow): TimeWindow {
  return { start: w.start, end: w.end };
}

function optionalWindow(w: TimeWindow | undefined): TimeWindow | undefined {
  return w && window(w);
}

function predicted(p: PredictedIdentity): PredictedIdentity {
  return {
    loss: p.loss,
    lossAt: p.lossAt,
    recoveredBy: p.recoveredBy && { earliest: p.recoveredBy.earliest, latest: p.recoveredBy.latest },
  };
}

function observed(o: ObservedIdentity): ObservedIdentity {
  return {
    gaps: o.gaps.map(window),
    svids: o.svids.map((s) => ({
      serial: s.serial,
      notBefore: s.notBefore,
      notAfter: s.notAfter,
      at: s.at,
      authority: s.authority,
    })),
    handshakes: { ok: o.handshakes.ok, failed: o.handshakes.failed },
    jwt: { ok: o.jwt.ok, failed: o.jwt.failed },
  };
}

function workload(w: WorkloadOutcome): WorkloadOutcome {
  return {
    spiffeId: w.spiffeId,
    group: w.group,
    predicted: predicted(w.predicted),
    observed: observed(w.observed),
  };
}

function expectation(e: ExpectationOutcome): ExpectationOutcome {
  return { name: e.name, met: e.met, evidence: [...e.evidence] };
}

function injection(i: InjectionRecord): InjectionRecord {
  return { action: i.action, state: i.state, at: i.at, detail: i.detail };
}

function drill(d: DrillRecord): DrillRecord {
  return {
    runId: d.runId,
    scenario: d.scenario,
    description: d.description,
    outage: d.outage,
    outageSeconds: d.outageSeconds,
    deploymentId: d.deploymentId,
    topology: d.topology,
    verdict: d.verdict,
    reason: d.reason,
    startedAt: d.startedAt,
    finishedAt: d.finishedAt,
    steady: optionalWindow(d.steady),
    fault: optionalWindow(d.fault),
    recovery: optionalWindow(d.recovery),
    injections: d.injections.map(injection),
    expectations: d.expectations.map(expectation),
    workloads: d.workloads.map(workload),
    findings: [...d.findings],
  };
}

function sample(s: ProbeSample): ProbeSample {
  switch (s.kind) {
    case 'svid':
      return {
        kind: s.kind,
        at: s.at,
        workload: s.workload,
        serial: s.serial,
        notBefore: s.notBefore,
        notAfter: s.notAfter,
        authority: s.authority,
      };
    case 'handshake':
      return {
        kind: s.kind,
        at: s.at,
        workload: s.workload,
        peer: s.peer,
        ok: s.ok,
        latencyMs: s.latencyMs,
        error: s.error,
      };
    case 'jwt':
      return {
        kind: s.kind,
        at: s.at,
        workload: s.workload,
        ok: s.ok,
        latencyMs: s.latencyMs,
        expiresAt: s.expiresAt,
        error: s.error,
      };
    case 'stream':
      return { kind: s.kind, at: s.at, workload: s.workload, ok: s.ok, error: s.error };
    case 'identities':
      return { kind: s.kind, at: s.at, workload: s.workload, spiffeIds: s.spiffeIds };
  }
}

/** The report as a value: samples of runs outside the suite are left out, a drill without samples gets []. */
export function jsonReport(suite: SuiteRecord, samples: Record<string, ProbeSample[]>): JsonReport {
  const byRun: Record<string, ProbeSample[]> = {};
  for (const d of suite.drills) {
    // Array.prototype.sort is stable: samples taken at the same millisecond keep their recorded order.
    byRun[d.runId] = (samples[d.runId] ?? []).map(sample).sort((a, b) => a.at - b.at);
  }
  return {
    suite: {
      suite: suite.suite,
      startedAt: suite.startedAt,
      finishedAt: suite.finishedAt,
      drills: suite.drills.map(drill),
    },
    samples: byRun,
  };
}

/** The report as pretty JSON (two-space indent, trailing newline); absent optional fields are omitted. */
export function renderJsonReport(suite: SuiteRecord, samples: Record<string, ProbeSample[]>): string {
  return `${JSON.stringify(jsonReport(suite, samples), null, 2)}\n`;
}
