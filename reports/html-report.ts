/**
 * The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched) for a
 * suite or a single drill. Each drill gets a header with its verdict and reason, its timeline and the
 * numbers underneath; a suite page starts with a summary linking to each drill.
 */
import type { DrillRecord, SuiteRecord, Verdict } from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import { renderDrillTables } from './drill-tables.js';
import { badge, page } from './html-page.js';
import { durationLabel, utcTime } from './report-time.js';
import { renderTimeline } from './timeline.js';
import { escapeAttribute as attr, escapeText as text } from './xml-escape.js';

const VERDICTS: Verdict[] = ['passed', 'failed', 'errored', 'aborted'];

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

/** One drill's card: header, timeline, tables. `index` keeps its ids unique on a page of several. */
export function drillSection(drill: DrillRecord, index: number, samples: ProbeSample[]): string {
  const outage = `${drill.outage} · ${durationLabel(drill.outageSeconds)} outage`;
  return [
    `<section class="card drill ${drill.verdict}" id="drill-${index}" data-run-id="${attr(drill.runId)}" data-verdict="${drill.verdict}">`,
    `<h2><span class="scenario">${text(drill.scenario)}</span> <span class="outage-class">${text(outage)}</span> ${badge(drill.verdict)}</h2>`,
    `<p class="reason ${drill.verdict}">${text(drill.reason)}</p>`,
    drill.description ? `<p class="description">${text(drill.description)}</p>` : '',
    `<p class="meta">run <code>${text(drill.runId)}</code> · deployment <code>${text(drill.deploymentId)}</code> · ` +
      `topology ${text(drill.topology)} · started ${text(utcTime(drill.startedAt))} · ` +
      `${text(durationLabel(seconds(drill.finishedAt - drill.startedAt)))}</p>`,
    renderTimeline(drill, samples, `t${index}`),
    renderDrillTables(drill, samples),
    '</section>',
  ].join('\n');
}

function suiteSummary(suite: SuiteRecord): string {
  const counts = VERDICTS.map((v) => [v, suite.drills.filter((d) => d.verdict === v).length] as const)
    .filter(([, count]) => count > 0)
    .map(([v, count]) => badge(v, `${count} ${v}`));
  const rows = suite.drills.map(
    (d, i) =>
      `<tr><td><a href="#drill-${i}">${text(d.scenario)}</a></td><td>${text(d.outage)}</td>` +
      `<td>${badge(d.verdict)}</td><td>${text(d.reason)}</td>` +
      `<td class="num">${text(durationLabel(seconds(d.finishedAt - d.startedAt)))}</td></tr>`,
  );
  return [
    '<section class="card summary">',
    `<h1>Suite ${text(suite.suite)}</h1>`,
    `<p class="meta">started ${text(utcTime(suite.startedAt))} · finished ${text(utcTime(suite.finishedAt))} · ` +
      `${text(durationLabel(seconds(suite.finishedAt - suite.startedAt)))} · ${suite.drills.length} ${suite.drills.length === 1 ? 'drill' : 'drills'}</p>`,
    `<div class="counts">${counts.join('')}</div>`,
    '<table>',
    '<thead><tr><th>Scenario</th><th>Outage</th><th>Verdict</th><th>Reason</th><th class="num">Duration</th></tr></thead>',
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table>',
    '</section>',
  ].join('\n');
}

function isSuite(subject: SuiteRecord | DrillRecord): subject is SuiteRecord {
  return 'drills' in subject;
}

/** The page for a suite (summary, then every drill) or for one drill; `samples` are the probe samples by run id. */
export function renderHtmlReport(
  subject: SuiteRecord | DrillRecord,
  samples: Record<string, ProbeSample[]>,
): string {
  // One drill is reported as a drill, whether it ran alone or is all a stored run holds.
  if (isSuite(subject) && subject.drills.length === 1 && !subject.stopped)
    return renderHtmlReport(subject.drills[0]!, samples);
  if (isSuite(subject)) {
    return page(`Suite ${subject.suite} · spire-drill`, [
      suiteSummary(subject),
      ...subject.drills.map((d, i) => drillSection(d, i, samples[d.runId] ?? [])),
    ]);
  }
  return page(`Drill ${subject.scenario} ${subject.outage} · ${subject.verdict} · spire-drill`, [
    drillSection(subject, 0, samples[subject.runId] ?? []),
  ]);
}
