import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { DrillRecord, SuiteRecord } from '../../scenarios/drill-record.js';
import { renderJunitReport } from '../../reports/junit-report.js';
import { GAP_WORKLOAD, sampleSuite } from '../support/sample-suite.js';

interface Outcome {
  '@_message'?: string;
  '#text'?: string;
}
interface Counts {
  '@_name': string;
  '@_tests': string;
  '@_failures': string;
  '@_errors': string;
  '@_skipped': string;
  '@_time': string;
}
interface TestCase {
  '@_classname': string;
  '@_name': string;
  '@_time': string;
  properties: { property: { '@_name': string; '@_value': string }[] };
  failure?: Outcome;
  error?: Outcome;
  skipped?: Outcome;
  'system-out': string;
}
interface Parsed {
  testsuites: Counts & { testsuite: Counts & { '@_timestamp': string; testcase: TestCase[] } };
}

function parse(xml: string): Parsed {
  expect(XMLValidator.validate(xml)).toBe(true);
  const parser = new XMLParser({
    ignoreAttributes: false,
    htmlEntities: true,
    isArray: (name) => name === 'testcase' || name === 'property',
  });
  return parser.parse(xml) as Parsed;
}

function property(testcase: TestCase, name: string): string | undefined {
  return testcase.properties.property.find((p) => p['@_name'] === name)?.['@_value'];
}

describe('renderJunitReport', () => {
  it('is a testsuite with one testcase per drill and the counts of each verdict', () => {
    const { suite } = sampleSuite();
    const { testsuites } = parse(renderJunitReport(suite));
    const testsuite = testsuites.testsuite;
    expect(testsuite['@_name']).toBe('ci');
    expect(testsuite['@_tests']).toBe('2');
    expect(testsuite['@_failures']).toBe('1');
    expect(testsuite['@_errors']).toBe('0');
    expect(testsuite['@_skipped']).toBe('0');
    expect(testsuite['@_time']).toBe('162.000');
    expect(testsuite['@_timestamp']).toBe('2026-11-26T06:00:00');
    expect(testsuites['@_tests']).toBe('2');
    expect(testsuite.testcase.map((t) => [t['@_classname'], t['@_name'], t['@_time']])).toEqual([
      ['lb-down', 'lb-down short', '52.000'],
      ['lb-down', 'lb-down long', '102.000'],
    ]);
    const [passed, failed] = testsuite.testcase;
    expect(passed?.failure).toBeUndefined();
    expect(property(failed!, 'deployment')).toBe('demo-7f3a');
    expect(property(failed!, 'outageSeconds')).toBe('45');
    expect(property(passed!, 'outageSeconds')).toBe('8');
  });

  it('puts the missed expectation’s evidence and each workload’s predicted and observed loss in the failure', () => {
    const { suite } = sampleSuite();
    const failed = parse(renderJunitReport(suite)).testsuites.testsuite.testcase[1]!;
    expect(failed.failure?.['@_message']).toBe('no workload loses identity: 2 of 3 workloads had a gap');
    const body = failed.failure?.['#text'] ?? '';
    expect(body).toContain('Missed expectations:\n- no workload loses identity\n');
    expect(body).toContain(`${GAP_WORKLOAD} had no valid SVID for 37.0 s (30.0–67.0 s)`);
    // Evidence with markup characters arrives intact.
    expect(body).toContain('(37.0–66.0 s) & <more>');
    expect(body).toContain('Met expectations:\n- recovers within one sync interval plus backoff of heal');
    expect(body).toContain(
      `- ${GAP_WORKLOAD} (east): predicted loss at 30.0 s, recovered by 65.0–72.0 s; ` +
        'observed gap 30.0–67.0 s (37.0 s without identity); 4 SVIDs; handshakes 65 ok, 37 failed',
    );
    expect(body).toContain(
      'spiffe://drill.test/upstream/agent-0/workload-0 (upstream): predicted no loss; observed no gap',
    );
    expect(failed['system-out']).toContain('20.0 s inject done: load balancer lb is not accepting on :18081');
    expect(failed['system-out']).toContain('Findings:\n- the upstream workload renewed through the outage');
  });

  it('reports an errored drill as an error and an aborted one as skipped', () => {
    const { suite } = sampleSuite();
    const base = suite.drills[0]!;
    const errored: DrillRecord = {
      ...base,
      runId: 'e',
      scenario: 'db-down',
      verdict: 'errored',
      reason: 'the injection did not take effect: the datastore still answered',
      injections: [{ action: 'inject', state: 'failed', at: base.startedAt + 1000, detail: 'pg still up' }],
    };
    const aborted: DrillRecord = {
      ...base,
      runId: 'a',
      scenario: 'agent-down',
      verdict: 'aborted',
      reason: 'operator abort',
    };
    const all: SuiteRecord = { ...suite, drills: [...suite.drills, errored, aborted] };
    const testsuite = parse(renderJunitReport(all)).testsuites.testsuite;
    expect([
      testsuite['@_tests'],
      testsuite['@_failures'],
      testsuite['@_errors'],
      testsuite['@_skipped'],
    ]).toEqual(['4', '1', '1', '1']);
    const [, , e, a] = testsuite.testcase;
    expect(e?.error?.['@_message']).toBe(errored.reason);
    expect(e?.error?.['#text']).toContain('1.0 s inject failed: pg still up');
    expect(e?.failure).toBeUndefined();
    expect(a?.skipped?.['@_message']).toBe('aborted: operator abort');
    expect(a?.error).toBeUndefined();
  });

  it('escapes markup, keeps line breaks in attributes and replaces characters XML forbids', () => {
    const { suite } = sampleSuite();
    const reason = 'expected "<none>" & got \'1\'\nsecond line\u0001 \uD800 end';
    const nasty: DrillRecord = { ...suite.drills[1]!, scenario: 'x<y>&"z"', reason };
    const xml = renderJunitReport({ ...suite, suite: 'a&b', drills: [nasty] });
    expect([...xml].filter((c) => c < ' ' && !'\t\n\r'.includes(c))).toEqual([]);
    const testsuite = parse(xml).testsuites.testsuite;
    expect(testsuite['@_name']).toBe('a&b');
    const [testcase] = testsuite.testcase;
    expect(testcase?.['@_classname']).toBe('x<y>&"z"');
    expect(testcase?.['@_name']).toBe('x<y>&"z" long');
    expect(testcase?.failure?.['@_message']).toBe(
      'expected "<none>" & got \'1\'\nsecond line\uFFFD \uFFFD end',
    );
  });
});
