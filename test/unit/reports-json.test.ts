import { describe, expect, it } from 'vitest';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';
import { renderJsonReport } from '../../reports/json-report.js';
import { FAILED_RUN, PASSED_RUN, sampleSuite } from '../support/sample-suite.js';

/** The same value with every object's keys in reverse order, as a store or another serializer might build it. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reversedKeys(v)]),
    );
  return value;
}

describe('renderJsonReport', () => {
  it('holds the suite record and each run’s samples, losing nothing', () => {
    const { suite, samples } = sampleSuite();
    const parsed = JSON.parse(renderJsonReport(suite, samples));
    expect(Object.keys(parsed)).toEqual(['suite', 'samples']);
    expect(parsed.suite).toEqual(suite);
    expect(Object.keys(parsed.samples)).toEqual([PASSED_RUN, FAILED_RUN]);
    for (const runId of [PASSED_RUN, FAILED_RUN]) {
      const sorted = [...(samples[runId] ?? [])].sort((a, b) => a.at - b.at);
      expect(parsed.samples[runId]).toEqual(sorted);
    }
  });

  it('is byte-identical whatever order the input objects were built in', () => {
    const { suite, samples } = sampleSuite();
    const shuffled = reversedKeys({ suite, samples }) as { suite: typeof suite; samples: typeof samples };
    expect(JSON.stringify(shuffled.suite)).not.toBe(JSON.stringify(suite));
    expect(renderJsonReport(shuffled.suite, shuffled.samples)).toBe(renderJsonReport(suite, samples));
  });

  it('orders fields as drill-record.ts declares them', () => {
    const { suite, samples } = sampleSuite();
    const parsed = JSON.parse(renderJsonReport(reversedKeys(suite) as typeof suite, samples));
    expect(Object.keys(parsed.suite)).toEqual(['suite', 'startedAt', 'finishedAt', 'drills']);
    expect(Object.keys(parsed.suite.drills[1]).slice(0, 4)).toEqual([
      'runId',
      'scenario',
      'description',
      'outage',
    ]);
    expect(Object.keys(parsed.suite.drills[1].workloads[0].predicted)).toEqual([
      'loss',
      'lossAt',
      'recoveredBy',
    ]);
    expect(Object.keys(parsed.samples[FAILED_RUN][0])).toEqual([
      'kind',
      'at',
      'workload',
      'serial',
      'notBefore',
      'notAfter',
      'authority',
    ]);
  });

  it('is pretty, sorts samples by time keeping ties in order, and covers exactly the suite’s runs', () => {
    const { suite } = sampleSuite();
    const tie = (workload: string): ProbeSample => ({ kind: 'stream', at: 5, workload, ok: true });
    const out = renderJsonReport(suite, {
      [FAILED_RUN]: [{ kind: 'stream', at: 9, workload: 'c', ok: false, error: 'gone' }, tie('a'), tie('b')],
      'not-in-suite': [tie('x')],
    });
    expect(out.endsWith('}\n')).toBe(true);
    expect(out).toContain('\n  "suite": {\n    "suite": "ci",');
    const parsed = JSON.parse(out);
    expect(parsed.samples[PASSED_RUN]).toEqual([]);
    expect(parsed.samples[FAILED_RUN].map((s: ProbeSample) => s.workload)).toEqual(['a', 'b', 'c']);
    expect(parsed.samples['not-in-suite']).toBeUndefined();
  });
});
