/**
 * Two runs of one scenario side by side: their figures in one table with the change from the first
 * to the second, then each run's own card (timeline and tables), on one page.
 */
import type { DrillRecord } from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import { badge, page } from './html-page.js';
import { drillSection } from './html-report.js';
import { runMetrics, type RunMetrics } from './measurements.js';
import { utcTime } from './report-time.js';
import { escapeText as text } from './xml-escape.js';

export interface ComparedRun {
  drill: DrillRecord;
  samples: ProbeSample[];
}

const n = (v: number, unit: string) => `${Math.round(v * 10) / 10}${unit ? ` ${unit}` : ''}`;

function row(label: string, a: number | undefined, b: number | undefined, unit: string): string {
  const shown = (v: number | undefined) => (v === undefined ? '–' : n(v, unit));
  const change = a === undefined || b === undefined ? '–' : `${b - a > 0 ? '+' : ''}${n(b - a, unit)}`;
  return `<tr><td>${text(label)}</td><td class="num">${shown(a)}</td><td class="num">${shown(b)}</td><td class="num">${text(change)}</td></tr>`;
}

function figures(a: RunMetrics, b: RunMetrics): string {
  return [
    '<table class="compare">',
    `<thead><tr><th></th><th class="num">A · ${text(utcTime(a.startedAt))}</th><th class="num">B · ${text(utcTime(b.startedAt))}</th><th class="num">B − A</th></tr></thead>`,
    '<tbody>',
    `<tr><td>Run</td><td class="num"><code>${text(a.runId)}</code></td><td class="num"><code>${text(b.runId)}</code></td><td></td></tr>`,
    `<tr><td>Verdict</td><td class="num">${badge(a.verdict)}</td><td class="num">${badge(b.verdict)}</td><td></td></tr>`,
    row('Workloads with loss', a.lossWorkloads, b.lossWorkloads, ''),
    row('Identity lost', a.lossSeconds, b.lossSeconds, 's'),
    row('Recovery after the heal', a.recoverySeconds, b.recoverySeconds, 's'),
    row('mTLS handshake p99', a.handshakeP99, b.handshakeP99, 'ms'),
    '</tbody>',
    '</table>',
  ].join('\n');
}

/** The comparison page of runs `a` and `b` (of one scenario). */
export function renderCompareReport(a: ComparedRun, b: ComparedRun): string {
  const ma = runMetrics(a.drill, a.samples);
  const mb = runMetrics(b.drill, b.samples);
  const what = `${a.drill.scenario} ${a.drill.outage}${b.drill.outage !== a.drill.outage ? ` / ${b.drill.outage}` : ''}`;
  return page(`Compare ${what} · spire-drill`, [
    '<section class="card summary">',
    `<h1>Two runs of ${text(what)}</h1>`,
    '<p class="meta">A is the earlier run; the last column is the change from A to B.</p>',
    figures(ma, mb),
    '</section>',
    drillSection(a.drill, 0, a.samples),
    drillSection(b.drill, 1, b.samples),
  ]);
}
