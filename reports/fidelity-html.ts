/**
 * fidelity.html: a fidelity run side by side. A summary (both suite runs, the threshold, how many
 * drills agree), then per drill one table with a column per implementation (verdict, fault held,
 * recovery, rotation propagation, each workload's predicted and observed loss and renewals), flagged
 * rows where the two differ by more than one sync interval, the differences with both runs' evidence,
 * and each run's own card (timeline and tables) folded underneath.
 */
import { badge, page } from './html-page.js';
import { drillSection } from './html-report.js';
import type {
  Difference,
  DrillComparison,
  DrillFigures,
  FidelityComparison,
  Figure,
  Pair,
  StoredRun,
  WorkloadFigures,
} from './fidelity-comparison.js';
import { sideNames } from './fidelity-comparison.js';
import { durationLabel, utcTime } from './report-time.js';
import { workloadName } from './workload-summary.js';
import { escapeAttribute as attr, escapeText as text } from './xml-escape.js';

/** Figures carry milliseconds; the page shows tenths of a second. */
const s = (v: number | undefined) => (v === undefined ? '–' : `${Math.round(v * 10) / 10} s`);

function row(
  figure: Figure,
  label: string,
  cells: Pair<string>,
  flagged: boolean,
  workload?: string,
): string {
  const hooks = `data-figure="${figure}"${workload ? ` data-workload="${attr(workload)}"` : ''}`;
  return `<tr class="${flagged ? 'flagged' : 'same'}" ${hooks}><td>${label}</td><td>${cells[0]}</td><td>${cells[1]}</td></tr>`;
}

function flaggedFor(differences: Difference[], figure: Figure, workload?: string): boolean {
  return differences.some((d) => d.figure === figure && d.workload === workload);
}

function drillCells(sides: Pair<DrillFigures | undefined>, cell: (f: DrillFigures) => string): Pair<string> {
  return [sides[0] ? cell(sides[0]) : 'did not run', sides[1] ? cell(sides[1]) : 'did not run'];
}

function workloadCells(
  sides: Pair<WorkloadFigures | undefined>,
  cell: (w: WorkloadFigures) => string,
): Pair<string> {
  return [sides[0] ? cell(sides[0]) : 'absent', sides[1] ? cell(sides[1]) : 'absent'];
}

function figuresTable(drill: DrillComparison, names: Pair<string>): string {
  const diff = drill.differences;
  const rows = [
    row(
      'verdict',
      'Verdict',
      drillCells(drill.sides, (f) => `${badge(f.verdict)} ${text(f.reason)}`),
      flaggedFor(diff, 'verdict') || flaggedFor(diff, 'missing'),
    ),
    row(
      'recovery',
      'Fault held · last workload back after the heal',
      drillCells(drill.sides, (f) => `${s(f.heldSeconds)} · ${s(f.recoverySeconds)}`),
      flaggedFor(diff, 'recovery'),
    ),
    row(
      'rotation-propagation',
      'Rotation propagation (fault start → every workload on a new authority)',
      drillCells(drill.sides, (f) =>
        !f.rotation
          ? 'not measured (no authority change)'
          : f.rotation.seconds === undefined
            ? `${f.rotation.moved} of ${f.rotation.of} workloads moved`
            : s(f.rotation.seconds),
      ),
      flaggedFor(diff, 'rotation-propagation'),
    ),
  ];
  for (const w of drill.workloads) {
    const name = text(workloadName(w.spiffeId));
    const absent = flaggedFor(diff, 'workload', w.spiffeId);
    rows.push(
      row(
        'predicted-loss',
        `<code>${name}</code> predicted loss`,
        workloadCells(w.sides, (f) =>
          f.predicted.loss === 'never'
            ? 'never'
            : `${f.predicted.loss}, ${s(f.predicted.seconds.min)} – ${s(f.predicted.seconds.max)}`,
        ),
        absent,
        w.spiffeId,
      ),
      row(
        'observed-loss',
        `<code>${name}</code> observed loss`,
        workloadCells(
          w.sides,
          (f) => `${s(f.observedLossSeconds)} <span class="meta">${text(f.observed)}</span>`,
        ),
        absent || flaggedFor(diff, 'observed-loss', w.spiffeId),
        w.spiffeId,
      ),
      row(
        'renewals',
        `<code>${name}</code> renewals in time`,
        workloadCells(w.sides, (f) =>
          f.renewals.fraction === undefined
            ? 'none due'
            : `${f.renewals.inTime} of ${f.renewals.due} (${Math.round(f.renewals.fraction * 100)} %)`,
        ),
        absent || flaggedFor(diff, 'renewals', w.spiffeId),
        w.spiffeId,
      ),
    );
  }
  return [
    '<table class="fidelity">',
    `<thead><tr><th></th><th>${text(names[0])}</th><th>${text(names[1])}</th></tr></thead>`,
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table>',
  ].join('\n');
}

function items(list: Difference[]): string[] {
  return list.map(
    (d) =>
      `<li data-figure="${d.figure}"${d.workload ? ` data-workload="${attr(d.workload)}"` : ''}>` +
      `<strong>${text(d.figure)}</strong>${d.workload ? ` <code>${text(workloadName(d.workload))}</code>` : ''}: ${text(d.summary)}` +
      `<ul class="evidence"><li>${text(d.evidence[0])}</li><li>${text(d.evidence[1])}</li></ul></li>`,
  );
}

function differencesList(drill: DrillComparison, threshold: number): string {
  const notes =
    drill.notes.length === 0
      ? ''
      : `\n<h3>Notes (not flagged)</h3>\n<ul class="notes">${items(drill.notes).join('\n')}</ul>`;
  if (drill.differences.length === 0)
    return `<p class="agree">Agree: no figure differs by more than one sync interval (${threshold} s).</p>${notes}`;
  return `<h3>Differences</h3>\n<ul class="differences">${items(drill.differences).join('\n')}</ul>${notes}`;
}

function drillCard(
  drill: DrillComparison,
  index: number,
  comparison: FidelityComparison,
  runs: Map<string, StoredRun>,
): string {
  const names = sideNames(comparison.fidelity);
  const agree = drill.differences.length === 0;
  const folded = drill.sides.map((f, side) => {
    const run = f ? runs.get(f.runId) : undefined;
    if (!run) return '';
    return [
      `<details class="run" data-implementation="${attr(comparison.fidelity.sides[side as 0 | 1].implementation)}">`,
      `<summary>${text(names[side]!)}: run <code>${text(run.drill.runId)}</code>, its timeline and tables</summary>`,
      drillSection(run.drill, 2 * index + side, run.samples),
      '</details>',
    ].join('\n');
  });
  return [
    `<section class="card fidelity-drill ${agree ? 'agree' : 'differ'}" id="fidelity-${index}" data-scenario="${attr(drill.scenario)}" data-outage="${attr(drill.outage)}" data-agree="${agree}">`,
    `<h2><span class="scenario">${text(drill.scenario)}</span> <span class="outage-class">${text(drill.outage)}</span> ` +
      `${drill.sides.map((f, i) => (f ? badge(f.verdict, `${names[i]} ${f.verdict}`) : '')).join(' ')}</h2>`,
    figuresTable(drill, names),
    differencesList(drill, comparison.thresholdSeconds),
    ...folded,
    '</section>',
  ].join('\n');
}

function summary(comparison: FidelityComparison): string {
  const f = comparison.fidelity;
  const [a, b] = f.sides;
  const names = sideNames(f);
  const agreeing = comparison.drills.filter((d) => d.differences.length === 0).length;
  const errored = comparison.drills.filter((d) => d.sides.some((side) => side?.verdict === 'errored')).length;
  const sideLine = (side: (typeof f.sides)[number], name: string) =>
    `<li data-implementation="${attr(side.implementation)}"><strong>${text(name)}</strong>: ` +
    `${side.suiteRunId ? `suite run <code>${text(side.suiteRunId)}</code>, ` : ''}${side.runIds.length} ${side.runIds.length === 1 ? 'drill' : 'drills'}` +
    `${side.error ? ` — <span class="bad">did not complete: ${text(side.error)}</span>` : ''}` +
    `${side.stopped ? ` — stopped: ${text(side.stopped.reason)} (${side.stopped.notRun} not run)` : ''}</li>`;
  const rows = comparison.drills.map(
    (d, i) =>
      `<tr class="${d.differences.length === 0 ? 'same' : 'flagged'}"><td><a href="#fidelity-${i}">${text(d.scenario)}</a></td><td>${text(d.outage)}</td>` +
      `${d.sides.map((side) => `<td>${side ? badge(side.verdict) : 'did not run'}</td>`).join('')}` +
      `<td class="num">${d.differences.length}</td></tr>`,
  );
  return [
    '<section class="card summary fidelity-summary">',
    `<h1>Fidelity of suite ${text(f.suite)}: ${text(names[0])} beside ${text(names[1])}</h1>`,
    `<p class="meta">run <code>${text(f.fidelityId)}</code> · topology ${text(f.topologyName)} (${text(f.topology)}) · ` +
      `started ${text(utcTime(f.startedAt))} · ${text(durationLabel(Math.round((f.finishedAt - f.startedAt) / 1000)))}</p>`,
    `<p class="meta">Figures further apart than one sync interval (${comparison.thresholdSeconds} s) are flagged, with what each run showed.</p>`,
    `<ul class="sides">${sideLine(a, names[0])}${sideLine(b, names[1])}</ul>`,
    `<div class="counts">${badge('passed', `${agreeing} agree`)}${badge('failed', `${comparison.drills.length - agreeing} differ`)}${errored > 0 ? badge('errored', `${errored} errored`) : ''}</div>`,
    '<table>',
    `<thead><tr><th>Scenario</th><th>Outage</th><th>${text(names[0])}</th><th>${text(names[1])}</th><th class="num">Differences</th></tr></thead>`,
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table>',
    '</section>',
  ].join('\n');
}

/** The page; `runs` (by run id) supply each side's timeline. */
export function renderFidelityHtml(comparison: FidelityComparison, runs: StoredRun[]): string {
  const byId = new Map(runs.map((run) => [run.drill.runId, run]));
  return page(`Fidelity ${comparison.fidelity.suite} · spire-drill`, [
    summary(comparison),
    ...comparison.drills.map((d, i) => drillCard(d, i, comparison, byId)),
  ]);
}
