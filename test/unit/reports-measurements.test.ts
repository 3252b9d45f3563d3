import { describe, expect, it } from 'vitest';
import { authorityColour } from '../../reports/authority-colour.js';
import { percentile, runMetrics, workloadMeasurements } from '../../reports/measurements.js';
import { FAILED_RUN, GAP_WORKLOAD, PASSED_RUN, sampleSuite } from '../support/sample-suite.js';

describe('what the probes measured, in numbers', () => {
  const { suite, samples } = sampleSuite();
  const failed = suite.drills.find((d) => d.runId === FAILED_RUN)!;
  const passed = suite.drills.find((d) => d.runId === PASSED_RUN)!;

  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeUndefined();
    expect(percentile([5], 99)).toBe(5);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
  });

  it('reduces a run to its loss, its recovery after the heal and its handshake p99', () => {
    expect(runMetrics(failed, samples[FAILED_RUN]!)).toMatchObject({
      runId: FAILED_RUN,
      verdict: 'failed',
      lossWorkloads: 2,
      lossSeconds: 66,
      recoverySeconds: 2,
      handshakeP99: 4,
    });
    expect(runMetrics(passed, samples[PASSED_RUN]!)).toMatchObject({
      lossWorkloads: 0,
      lossSeconds: 0,
      recoverySeconds: 0,
    });
  });

  it('measures each workload: handshakes per second, results and latency, JWT-SVIDs', () => {
    const gap = workloadMeasurements(failed, samples[FAILED_RUN]!).find((m) => m.spiffeId === GAP_WORKLOAD)!;
    expect(gap.handshakes).toMatchObject({ ok: 65, failed: 37, p50: 4, p99: 4 });
    expect(gap.handshakes.perSecond).toBeCloseTo(1, 1);
    expect(gap.jwt).toMatchObject({ ok: 75, failed: 27, p50: 3, p99: 3 });
  });

  it('gives an authority one colour, whatever report it is in, and different ones to different ids', () => {
    const id = 'e45f0011223344556677889900aabbccddeeff00';
    expect(authorityColour(id)).toBe(authorityColour(id));
    expect(authorityColour(id)).toMatch(/^hsl\(\d+, 48%, \d+%\)$/);
    const hues = new Set(Array.from({ length: 50 }, (_, i) => authorityColour(`${id}${i}`)));
    expect(hues.size).toBeGreaterThan(45);
  });
});
