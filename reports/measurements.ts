/**
 * What the probes measured, in numbers: per workload (handshake rate and latency, JWT-SVID results),
 * and per run (identity lost, time to recover, handshake p99), so that a healthy run still shows what
 * was measured and runs can be set side by side or over time.
 */
import type { DrillRecord } from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';

/** The nearest-rank percentile `p` (0–100) of `values`; undefined when there are none. */
export function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export interface LatencyStats {
  ok: number;
  failed: number;
  /** Milliseconds, over every attempt (a failed one counts with the time it took to fail). */
  p50?: number;
  p99?: number;
}

export interface WorkloadMeasurement {
  spiffeId: string;
  handshakes: LatencyStats & { perSecond: number };
  jwt: LatencyStats;
}

function stats(samples: { ok: boolean; latencyMs: number }[]): LatencyStats {
  const latencies = samples.map((s) => s.latencyMs);
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  return {
    ok: samples.filter((s) => s.ok).length,
    failed: samples.filter((s) => !s.ok).length,
    ...(p50 !== undefined ? { p50 } : {}),
    ...(p99 !== undefined ? { p99 } : {}),
  };
}

/** The drill's own samples: those taken between its start and its end. */
function during(drill: DrillRecord, samples: ProbeSample[]): ProbeSample[] {
  return samples.filter((s) => s.at >= drill.startedAt && s.at <= drill.finishedAt);
}

/** Each workload's handshakes (rate, results, latency) and JWT-SVID validations over the drill. */
export function workloadMeasurements(drill: DrillRecord, samples: ProbeSample[]): WorkloadMeasurement[] {
  const seconds = Math.max(1, (drill.finishedAt - drill.startedAt) / 1000);
  const own = during(drill, samples);
  return drill.workloads.map((w) => {
    const handshakes = own.filter((s) => s.kind === 'handshake' && s.workload === w.spiffeId);
    const jwt = own.filter((s) => s.kind === 'jwt' && s.workload === w.spiffeId);
    return {
      spiffeId: w.spiffeId,
      handshakes: {
        ...stats(handshakes as { ok: boolean; latencyMs: number }[]),
        perSecond: handshakes.length / seconds,
      },
      jwt: stats(jwt as { ok: boolean; latencyMs: number }[]),
    };
  });
}

export interface RunMetrics {
  runId: string;
  scenario: string;
  outage: string;
  verdict: DrillRecord['verdict'];
  startedAt: number;
  /** Workloads that held no valid SVID at some point, and the seconds they spent so, summed. */
  lossWorkloads: number;
  lossSeconds: number;
  /** Seconds from the heal until the last workload held a valid SVID again (0: none was without). */
  recoverySeconds?: number;
  handshakeP99?: number;
}

/** One run reduced to the figures a trend or a comparison shows. */
export function runMetrics(drill: DrillRecord, samples: ProbeSample[]): RunMetrics {
  const gaps = drill.workloads.map((w) => w.observed.gaps);
  const healedAt = drill.fault?.end;
  const recoveredAt =
    healedAt === undefined
      ? undefined
      : Math.max(
          healedAt,
          ...gaps
            .flat()
            .filter((g) => g.end > healedAt)
            .map((g) => g.end),
        );
  const handshakes = during(drill, samples).filter((s) => s.kind === 'handshake') as {
    latencyMs: number;
  }[];
  const p99 = percentile(
    handshakes.map((s) => s.latencyMs),
    99,
  );
  return {
    runId: drill.runId,
    scenario: drill.scenario,
    outage: drill.outage,
    verdict: drill.verdict,
    startedAt: drill.startedAt,
    lossWorkloads: gaps.filter((g) => g.length > 0).length,
    lossSeconds: gaps.flat().reduce((sum, g) => sum + (g.end - g.start) / 1000, 0),
    ...(recoveredAt !== undefined ? { recoverySeconds: (recoveredAt - healedAt!) / 1000 } : {}),
    ...(p99 !== undefined ? { handshakeP99: p99 } : {}),
  };
}
