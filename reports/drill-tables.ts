/**
 * The numbers under a drill's timeline, as HTML tables: the expectations with their evidence, each
 * workload's predicted against observed identity loss with its handshake and JWT counts, what the
 * probes measured per workload (handshake rate and latency, JWT-SVID results), the log of the fault's
 * injections, and the scenario's findings.
 */
import type { DrillRecord } from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import { workloadMeasurements } from './measurements.js';
import { secondsSince, utcTime } from './report-time.js';
import { observedText, predictedText, workloadName } from './workload-summary.js';
import { escapeAttribute as attr, escapeText as text } from './xml-escape.js';

function table(head: string[], rows: string[][], numeric: Set<number> = new Set()): string {
  const cell = (tag: 'th' | 'td', content: string, i: number) =>
    numeric.has(i) ? `<${tag} class="num">${content}</${tag}>` : `<${tag}>${content}</${tag}>`;
  return [
    '<table>',
    `<thead><tr>${head.map((h, i) => cell('th', text(h), i)).join('')}</tr></thead>`,
    '<tbody>',
    ...rows.map((row) => `<tr>${row.map((c, i) => cell('td', c, i)).join('')}</tr>`),
    '</tbody>',
    '</table>',
  ].join('\n');
}

function none(what: string): string {
  return `<p class="none">${text(what)}</p>`;
}

function expectations(drill: DrillRecord): string {
  if (drill.expectations.length === 0) return none('No expectation was checked.');
  return table(
    ['Expectation', 'Result', 'Evidence'],
    drill.expectations.map((e) => [
      text(e.name),
      e.met ? '<span class="met">✓ met</span>' : '<span class="missed">✗ missed</span>',
      e.evidence.length
        ? `<ul class="evidence">${e.evidence.map((line) => `<li>${text(line)}</li>`).join('')}</ul>`
        : '',
    ]),
  );
}

function counts(ok: number, failed: number): string {
  return failed ? `${ok} / <span class="missed">${failed}</span>` : `${ok} / 0`;
}

function workloads(drill: DrillRecord): string {
  if (drill.workloads.length === 0) return none('No workload was recorded.');
  return table(
    ['Workload', 'Group', 'Predicted', 'Observed', 'SVIDs', 'mTLS ok / failed', 'JWT ok / failed'],
    drill.workloads.map((w) => [
      `<span title="${attr(w.spiffeId)}">${text(workloadName(w.spiffeId))}</span>`,
      text(w.group),
      text(predictedText(w.predicted, drill.startedAt)),
      w.observed.gaps.length
        ? `<span class="missed">${text(observedText(w.observed, drill.startedAt))}</span>`
        : text(observedText(w.observed, drill.startedAt)),
      String(w.observed.svids.length),
      counts(w.observed.handshakes.ok, w.observed.handshakes.failed),
      counts(w.observed.jwt.ok, w.observed.jwt.failed),
    ]),
    new Set([4, 5, 6]),
  );
}

const ms = (value: number | undefined) => (value === undefined ? '–' : `${Math.round(value)} ms`);

function measured(drill: DrillRecord, samples: ProbeSample[]): string {
  if (drill.workloads.length === 0) return none('No workload was recorded.');
  return table(
    [
      'Workload',
      'mTLS handshakes / s',
      'mTLS ok / failed',
      'mTLS p50',
      'mTLS p99',
      'JWT ok / failed',
      'JWT p50',
      'JWT p99',
    ],
    workloadMeasurements(drill, samples).map((m) => [
      `<span title="${attr(m.spiffeId)}">${text(workloadName(m.spiffeId))}</span>`,
      m.handshakes.perSecond.toFixed(2),
      counts(m.handshakes.ok, m.handshakes.failed),
      ms(m.handshakes.p50),
      ms(m.handshakes.p99),
      counts(m.jwt.ok, m.jwt.failed),
      ms(m.jwt.p50),
      ms(m.jwt.p99),
    ]),
    new Set([1, 2, 3, 4, 5, 6, 7]),
  );
}

function injections(drill: DrillRecord): string {
  if (drill.injections.length === 0) return none('No fault was injected.');
  return table(
    ['Since start', 'At', 'Step', 'State', 'Detail'],
    drill.injections.map((i) => [
      text(secondsSince(drill.startedAt, i.at)),
      text(utcTime(i.at)),
      text(i.action),
      i.state === 'failed' ? `<span class="missed">${text(i.state)}</span>` : text(i.state),
      text(i.detail),
    ]),
    new Set([0]),
  );
}

function findings(drill: DrillRecord): string {
  if (drill.findings.length === 0) return none('None.');
  return `<ul class="findings">${drill.findings.map((f) => `<li>${text(f)}</li>`).join('')}</ul>`;
}

export function renderDrillTables(drill: DrillRecord, samples: ProbeSample[]): string {
  return [
    '<h3>Expectations</h3>',
    expectations(drill),
    '<h3>Identity per workload</h3>',
    '<p class="meta">Times are seconds since the drill started.</p>',
    workloads(drill),
    '<h3>Measured per workload</h3>',
    '<p class="meta">What each probe measured from the drill’s start to its end: its mTLS handshakes to its peer and the JWT-SVIDs it fetched and validated.</p>',
    `<div class="measured">${measured(drill, samples)}</div>`,
    '<h3>Injections</h3>',
    injections(drill),
    '<h3>Findings</h3>',
    findings(drill),
  ].join('\n');
}
