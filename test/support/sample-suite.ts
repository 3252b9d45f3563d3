import type {
  DrillRecord,
  PredictedIdentity,
  SuiteRecord,
  TimeWindow,
  WorkloadOutcome,
} from '../../scenarios/drill-record.js';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';

/**
 * A hand-built suite for the report tests: `lb-down short` passed (two workloads renew through the
 * outage) and `lb-down long` failed (one of three workloads loses its identity for 37 s, against an
 * expectation that none would). SVIDs live 20 s plus 10 s of backdating; probes sample every second;
 * the samples agree with the observed figures in the records.
 */

const TTL = 20;
const BACKDATE = 10;
export const SUITE_START = Date.UTC(2026, 10, 26, 6, 0, 0);

interface WorkloadSpec {
  spiffeId: string;
  group: string;
  authority: string;
  /** Seconds since the drill started at which the probe received each SVID. */
  issuedAt: number[];
  predicted: (start: number) => PredictedIdentity;
}

interface Built {
  outcome: WorkloadOutcome;
  samples: ProbeSample[];
}

function inAny(windows: TimeWindow[], at: number): boolean {
  return windows.some((w) => at >= w.start && at < w.end);
}

function buildWorkload(spec: WorkloadSpec, start: number, finish: number): Built {
  const ms = (s: number) => start + s * 1000;
  const svids = spec.issuedAt.map((t, i) => ({
    serial: `${spec.group === 'east' ? 'e' : 'a'}${spec.spiffeId.slice(-1)}${String(i).padStart(3, '0')}`,
    notBefore: ms(t - BACKDATE),
    notAfter: ms(t + TTL),
    at: ms(t),
    authority: spec.authority,
  }));
  const gaps: TimeWindow[] = [];
  svids.forEach((svid, i) => {
    const next = svids[i + 1];
    const until = Math.min(next ? next.at : finish, finish);
    if (svid.notAfter < until) gaps.push({ start: Math.max(svid.notAfter, start), end: until });
  });
  const samples: ProbeSample[] = svids.map((s) => ({ kind: 'svid', workload: spec.spiffeId, ...s }));
  for (let at = start + 500; at < finish; at += 1000) {
    const ok = !inAny(gaps, at);
    samples.push({
      kind: 'handshake',
      at,
      workload: spec.spiffeId,
      peer: 'spiffe://drill.test/peer',
      ok,
      latencyMs: ok ? 4 : 1,
      ...(ok ? {} : { error: 'tls: certificate has expired <x509: "expired">' }),
    });
    // JWT-SVIDs keep validating until the JWT itself lapses, later than the X509-SVID: fail only late in a gap.
    const jwtOk = !inAny(gaps, at - 10_000) || !inAny(gaps, at);
    samples.push({
      kind: 'jwt',
      at: at + 200,
      workload: spec.spiffeId,
      ok: jwtOk,
      latencyMs: 3,
      ...(jwtOk ? { expiresAt: at + 300_000 } : { error: 'no JWT-SVID: issuance unavailable' }),
    });
  }
  const count = (kind: 'handshake' | 'jwt') => ({
    ok: samples.filter((s) => s.kind === kind && s.ok).length,
    failed: samples.filter((s) => s.kind === kind && !s.ok).length,
  });
  return {
    outcome: {
      spiffeId: spec.spiffeId,
      group: spec.group,
      predicted: spec.predicted(start),
      observed: { gaps, svids, handshakes: count('handshake'), jwt: count('jwt') },
    },
    samples,
  };
}

const never = (): PredictedIdentity => ({ loss: 'never' });

function drill(
  runId: string,
  outage: 'short' | 'long',
  start: number,
  phases: { fault: [number, number]; finish: number },
  specs: WorkloadSpec[],
): { record: Omit<DrillRecord, 'verdict' | 'reason' | 'expectations' | 'findings'>; samples: ProbeSample[] } {
  const ms = (s: number) => start + s * 1000;
  const finish = ms(phases.finish);
  const built = specs.map((spec) => buildWorkload(spec, start, finish));
  const [faultStart, faultEnd] = phases.fault;
  return {
    record: {
      runId,
      scenario: 'lb-down',
      description: 'The load balancer in front of the HA upstream cluster is down.',
      outage,
      outageSeconds: faultEnd - faultStart,
      deploymentId: 'demo-7f3a',
      topology: 'topologies/demo.yaml',
      startedAt: start,
      finishedAt: finish,
      steady: { start, end: ms(faultStart) },
      fault: { start: ms(faultStart), end: ms(faultEnd) },
      recovery: { start: ms(faultEnd), end: finish },
      injections: [
        {
          action: 'inject',
          state: 'started',
          at: ms(faultStart) - 200,
          detail: 'stop load balancer lb (pid 4242)',
        },
        {
          action: 'inject',
          state: 'done',
          at: ms(faultStart),
          detail: 'load balancer lb is not accepting on :18081',
        },
        { action: 'heal', state: 'started', at: ms(faultEnd) - 200, detail: 'start load balancer lb' },
        {
          action: 'heal',
          state: 'done',
          at: ms(faultEnd),
          detail: 'load balancer lb accepts on :18081 again',
        },
      ],
      workloads: built.map((b) => b.outcome),
    },
    samples: built.flatMap((b) => b.samples),
  };
}

export const PASSED_RUN = 'drill-lb-down-short-1';
export const FAILED_RUN = 'drill-lb-down-long-2';
export const GAP_WORKLOAD = 'spiffe://drill.test/east/agent-0/workload-0';

/** The suite, and the samples by run id. */
export function sampleSuite(): { suite: SuiteRecord; samples: Record<string, ProbeSample[]> } {
  const shortStart = SUITE_START;
  const short = drill(PASSED_RUN, 'short', shortStart, { fault: [20, 28], finish: 52 }, [
    {
      spiffeId: 'spiffe://drill.test/upstream/agent-0/workload-0',
      group: 'upstream',
      authority: 'a1b2c3d4e5f60718293a4b5c6d7e8f9001122334',
      issuedAt: [-5, 10, 29, 44],
      predicted: never,
    },
    {
      spiffeId: 'spiffe://drill.test/east/agent-0/workload-0',
      group: 'east',
      authority: 'e45f0011223344556677889900aabbccddeeff00',
      issuedAt: [-2, 13, 29, 46],
      predicted: never,
    },
  ]);
  const longStart = SUITE_START + 60_000;
  const long = drill(FAILED_RUN, 'long', longStart, { fault: [20, 65], finish: 102 }, [
    {
      spiffeId: GAP_WORKLOAD,
      group: 'east',
      authority: 'e45f0011223344556677889900aabbccddeeff00',
      issuedAt: [-5, 10, 67, 82],
      predicted: (start) => ({
        loss: 'always',
        lossAt: start + 30_000,
        recoveredBy: { earliest: start + 65_000, latest: start + 72_000 },
      }),
    },
    {
      spiffeId: 'spiffe://drill.test/east/agent-0/workload-1',
      group: 'east',
      authority: 'e45f0011223344556677889900aabbccddeeff00',
      issuedAt: [2, 17, 66, 81, 96],
      predicted: (start) => ({
        loss: 'possibly',
        lossAt: start + 37_000,
        recoveredBy: { earliest: start + 65_000, latest: start + 72_000 },
      }),
    },
    {
      spiffeId: 'spiffe://drill.test/upstream/agent-0/workload-0',
      group: 'upstream',
      authority: 'a1b2c3d4e5f60718293a4b5c6d7e8f9001122334',
      issuedAt: [-3, 12, 27, 42, 57, 72, 87],
      predicted: never,
    },
  ]);
  // The second east workload also loses its identity (37–66 s); the upstream one, on the other side of
  // the balancer, never does. A Workload API stream break and its return show as marks.
  long.samples.push(
    {
      kind: 'stream',
      at: longStart + 40_000,
      workload: GAP_WORKLOAD,
      ok: false,
      error: 'UNAVAILABLE: agent restarting',
    },
    { kind: 'stream', at: longStart + 41_000, workload: GAP_WORKLOAD, ok: true },
  );
  return {
    suite: {
      suite: 'ci',
      startedAt: shortStart,
      finishedAt: long.record.finishedAt,
      drills: [
        {
          ...short.record,
          verdict: 'passed',
          reason: 'every expectation met',
          expectations: [
            {
              name: 'no workload loses identity',
              met: true,
              evidence: ['0 of 2 workloads had a gap; the model predicted none would'],
            },
          ],
          findings: [],
        },
        {
          ...long.record,
          verdict: 'failed',
          reason: 'no workload loses identity: 2 of 3 workloads had a gap',
          expectations: [
            {
              name: 'no workload loses identity',
              met: false,
              evidence: [
                `${GAP_WORKLOAD} had no valid SVID for 37.0 s (30.0–67.0 s); the model predicted loss at 30.0 s`,
                'spiffe://drill.test/east/agent-0/workload-1 had no valid SVID for 29.0 s (37.0–66.0 s) & <more>',
              ],
            },
            {
              name: 'recovers within one sync interval plus backoff of heal',
              met: true,
              evidence: ['last recovery at 67.0 s; predicted by 72.0 s at the latest'],
            },
          ],
          findings: [
            'the upstream workload renewed through the outage: its agent reaches the servers directly',
          ],
        },
      ],
    },
    samples: { [PASSED_RUN]: short.samples, [FAILED_RUN]: long.samples },
  };
}
