/**
 * The JUnit XML report, for CI systems: the suite is a <testsuite>, each drill a <testcase> named
 * `<scenario> <outage>`. A failed drill carries the evidence of every missed expectation and each
 * workload's predicted and observed identity loss in its <failure>, so the CI page alone says why;
 * an errored drill is an <error>, an aborted one <skipped>.
 */
import type { DrillRecord, SuiteRecord } from '../scenarios/drill-record.js';
import { secondsSince } from './report-time.js';
import { workloadLine } from './workload-summary.js';
import { escapeAttribute as attr, escapeText as text } from './xml-escape.js';

function seconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

/** The schema's timestamp: ISO 8601 without a zone; ours is UTC. */
function timestamp(at: number): string {
  return new Date(at).toISOString().slice(0, 19);
}

function indent(lines: string[], prefix = '  '): string[] {
  return lines.map((line) => prefix + line);
}

function expectationLines(drill: DrillRecord, met: boolean): string[] {
  return drill.expectations
    .filter((e) => e.met === met)
    .flatMap((e) => [`- ${e.name}`, ...indent(e.evidence, '    ')]);
}

function workloadLines(drill: DrillRecord): string[] {
  if (drill.workloads.length === 0) return ['(no workload recorded)'];
  return drill.workloads.map((w) => `- ${workloadLine(w, drill.startedAt)}`);
}

function injectionLines(drill: DrillRecord): string[] {
  if (drill.injections.length === 0) return ['(none)'];
  return drill.injections.map(
    (i) => `- ${secondsSince(drill.startedAt, i.at)} ${i.action} ${i.state}: ${i.detail}`,
  );
}

function failureBody(drill: DrillRecord): string[] {
  const missed = expectationLines(drill, false);
  const met = expectationLines(drill, true);
  return [
    `${drill.scenario} ${drill.outage} failed: ${drill.reason}`,
    '',
    'Missed expectations:',
    ...(missed.length ? missed : ['(none recorded)']),
    ...(met.length ? ['', 'Met expectations:', ...met] : []),
    '',
    'Identity per workload (times in seconds since the drill started):',
    ...workloadLines(drill),
  ];
}

function errorBody(drill: DrillRecord): string[] {
  return [
    `${drill.scenario} ${drill.outage} errored: ${drill.reason}`,
    '',
    'Injections:',
    ...injectionLines(drill),
  ];
}

/** What every testcase prints: the run, the fault's steps, the per-workload figures (unless the failure has them) and the findings. */
function systemOut(drill: DrillRecord): string[] {
  return [
    `run ${drill.runId} on deployment ${drill.deploymentId} (${drill.topology}): ${drill.verdict}, ${drill.reason}`,
    '',
    'Injections:',
    ...injectionLines(drill),
    ...(drill.verdict === 'failed'
      ? []
      : ['', 'Identity per workload (times in seconds since the drill started):', ...workloadLines(drill)]),
    ...(drill.findings.length ? ['', 'Findings:', ...drill.findings.map((f) => `- ${f}`)] : []),
  ];
}

function outcomeElement(drill: DrillRecord): string[] {
  switch (drill.verdict) {
    case 'passed':
      return [];
    case 'failed':
      return [
        `<failure message="${attr(drill.reason)}" type="ExpectationMissed">${text(failureBody(drill).join('\n'))}</failure>`,
      ];
    case 'errored':
      return [
        `<error message="${attr(drill.reason)}" type="DrillErrored">${text(errorBody(drill).join('\n'))}</error>`,
      ];
    case 'aborted':
      return [`<skipped message="${attr(`aborted: ${drill.reason}`)}"/>`];
  }
}

function property(name: string, value: string | number): string {
  return `<property name="${attr(name)}" value="${attr(String(value))}"/>`;
}

function testcase(drill: DrillRecord): string[] {
  return [
    `<testcase classname="${attr(drill.scenario)}" name="${attr(`${drill.scenario} ${drill.outage}`)}" time="${seconds(drill.finishedAt - drill.startedAt)}">`,
    '  <properties>',
    ...indent(
      [
        property('runId', drill.runId),
        property('deployment', drill.deploymentId),
        property('topology', drill.topology),
        property('outage', drill.outage),
        property('outageSeconds', drill.outageSeconds),
        property('verdict', drill.verdict),
      ],
      '    ',
    ),
    '  </properties>',
    ...indent(outcomeElement(drill)),
    `  <system-out>${text(systemOut(drill).join('\n'))}</system-out>`,
    '</testcase>',
  ];
}

/** The whole suite as a JUnit XML document (UTF-8, trailing newline). */
export function renderJunitReport(suite: SuiteRecord): string {
  const count = (verdict: DrillRecord['verdict']) => suite.drills.filter((d) => d.verdict === verdict).length;
  const totals =
    `tests="${suite.drills.length}" failures="${count('failed')}" errors="${count('errored')}" ` +
    `skipped="${count('aborted')}" time="${seconds(suite.finishedAt - suite.startedAt)}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${attr(suite.suite)}" ${totals}>`,
    `  <testsuite name="${attr(suite.suite)}" ${totals} timestamp="${timestamp(suite.startedAt)}">`,
    ...indent(suite.drills.flatMap(testcase), '    '),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
