/**
 * Runs of one scenario over time, as one page: for each stored run its verdict, the identity it lost,
 * how long the workloads took to recover after the heal and the handshake p99, each drawn against
 * the run's start so that a slower recovery since last month shows as a rising line; the runs
 * listed underneath.
 */
import { badge, page } from './html-page.js';
import type { RunMetrics } from './measurements.js';
import { durationLabel, utcTime } from './report-time.js';
import { escapeAttribute as attr, escapeText as text } from './xml-escape.js';

const WIDTH = 1120;
const HEIGHT = 150;
const LEFT = 70;
const RIGHT = WIDTH - 30;
const TOP = 16;
const BOTTOM = HEIGHT - 30;

const VERDICT_COLOUR: Record<RunMetrics['verdict'], string> = {
  passed: '#1a7f37',
  failed: '#cf222e',
  errored: '#9a6700',
  aborted: '#6e7781',
};

interface Series {
  key: 'lossSeconds' | 'recoverySeconds' | 'handshakeP99';
  title: string;
  unit: string;
}

const SERIES: Series[] = [
  { key: 'lossSeconds', title: 'Identity lost (workload-seconds without a valid SVID)', unit: 's' },
  {
    key: 'recoverySeconds',
    title: 'Recovery after the heal (until every workload holds a valid SVID)',
    unit: 's',
  },
  { key: 'handshakeP99', title: 'mTLS handshake p99', unit: 'ms' },
];

const n = (v: number) => String(Math.round(v * 10) / 10);

/** Run i of `count` across the plot: runs are evenly spaced in start order, dated below. */
function xOf(i: number, count: number): number {
  return count === 1 ? (LEFT + RIGHT) / 2 : LEFT + (i / (count - 1)) * (RIGHT - LEFT);
}

function dateLabels(runs: RunMetrics[]): string[] {
  const every = Math.max(1, Math.ceil(runs.length / 8));
  return runs.flatMap((r, i) =>
    i % every === 0 || i === runs.length - 1
      ? [
          `<text class="run-date" x="${n(xOf(i, runs.length))}" y="${HEIGHT - 8}" font-size="11" fill="#57606a" text-anchor="${runs.length > 1 && i === runs.length - 1 ? 'end' : i === 0 && runs.length > 1 ? 'start' : 'middle'}">${text(utcTime(r.startedAt).slice(0, 16))}</text>`,
        ]
      : [],
  );
}

function chart(series: Series, runs: RunMetrics[]): string {
  const values = runs.map((r) => r[series.key]);
  const known = values.filter((v): v is number => v !== undefined);
  const max = Math.max(1e-9, ...known) * 1.1;
  const y = (v: number) => BOTTOM - (v / max) * (BOTTOM - TOP);
  const points = runs.flatMap((r, i) => {
    const v = values[i];
    return v === undefined ? [] : [{ x: xOf(i, runs.length), y: y(v), v, r }];
  });
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${n(p.x)} ${n(p.y)}`).join(' ');
  return [
    `<h3>${text(series.title)}</h3>`,
    `<svg class="trend" data-series="${series.key}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${attr(series.title)}" font-family="system-ui, 'DejaVu Sans', sans-serif">`,
    `<line x1="${LEFT}" y1="${BOTTOM}" x2="${RIGHT}" y2="${BOTTOM}" stroke="#57606a"/>`,
    `<text x="${LEFT - 8}" y="${TOP + 4}" font-size="11" fill="#57606a" text-anchor="end">${text(`${n(max / 1.1)} ${series.unit}`)}</text>`,
    `<text x="${LEFT - 8}" y="${BOTTOM}" font-size="11" fill="#57606a" text-anchor="end">0</text>`,
    path ? `<path d="${path}" fill="none" stroke="#3a68ad" stroke-width="1.5"/>` : '',
    ...points.map(
      (p) =>
        `<circle class="run" data-run-id="${attr(p.r.runId)}" data-verdict="${p.r.verdict}" cx="${n(p.x)}" cy="${n(p.y)}" r="4.5" fill="${VERDICT_COLOUR[p.r.verdict]}"><title>${text(`${p.r.runId}: ${n(p.v)} ${series.unit} (${p.r.verdict})`)}</title></circle>`,
    ),
    ...dateLabels(runs),
    '</svg>',
  ].join('\n');
}

function runTable(runs: RunMetrics[]): string {
  const cell = (v: number | undefined, unit: string) => (v === undefined ? '–' : `${n(v)} ${unit}`);
  return [
    '<table>',
    '<thead><tr><th>Started</th><th>Run</th><th>Verdict</th><th class="num">Workloads with loss</th><th class="num">Identity lost</th><th class="num">Recovery</th><th class="num">Handshake p99</th></tr></thead>',
    '<tbody>',
    ...[...runs]
      .reverse()
      .map(
        (r) =>
          `<tr><td>${text(utcTime(r.startedAt))}</td><td><code>${text(r.runId)}</code></td><td>${badge(r.verdict)}</td>` +
          `<td class="num">${r.lossWorkloads}</td><td class="num">${cell(r.lossSeconds, 's')}</td>` +
          `<td class="num">${cell(r.recoverySeconds, 's')}</td><td class="num">${cell(r.handshakeP99, 'ms')}</td></tr>`,
      ),
    '</tbody>',
    '</table>',
  ].join('\n');
}

/** The trend page of `scenario` (at `outage`, when given) over `runs`, oldest first. */
export function renderTrendReport(scenario: string, outage: string | undefined, runs: RunMetrics[]): string {
  const what = `${scenario}${outage ? ` ${outage}` : ''}`;
  const counts = (['passed', 'failed', 'errored', 'aborted'] as const)
    .map((v) => [v, runs.filter((r) => r.verdict === v).length] as const)
    .filter(([, c]) => c > 0)
    .map(([v, c]) => badge(v, `${c} ${v}`));
  const spanSeconds = runs.length > 1 ? (runs.at(-1)!.startedAt - runs[0]!.startedAt) / 1000 : 0;
  const days = Math.round(spanSeconds / 86400);
  const span =
    runs.length < 2
      ? ''
      : spanSeconds >= 2 * 86400
        ? ` over ${days} days`
        : ` over ${durationLabel(Math.round(spanSeconds))}`;
  return page(`Trend ${what} · spire-drill`, [
    '<section class="card summary">',
    `<h1>Trend of ${text(what)}</h1>`,
    `<p class="meta">${runs.length} ${runs.length === 1 ? 'run' : 'runs'}${text(span)}, oldest on the left; each dot is one run, coloured by its verdict.</p>`,
    `<div class="counts">${counts.join('')}</div>`,
    ...SERIES.map((s) => chart(s, runs)),
    '<h3>Runs, newest first</h3>',
    runTable(runs),
    '</section>',
  ]);
}
