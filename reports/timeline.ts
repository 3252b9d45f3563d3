/**
 * A drill's timeline as an inline SVG figure with its legend: seconds since the drill started across,
 * the phases and the outage shaded, and one row per workload showing its SVIDs' validity, the identity
 * loss the TTL model predicted against the gaps the probes saw, and the probes' failures.
 *
 * Everything is drawn here, server-side, with presentation attributes: the figure needs no script, no
 * stylesheet and no network to render. Elements carry stable classes and data attributes (svg.timeline,
 * g.workload, rect.svid, rect.outage, rect.gap, rect.predicted-loss, .hs-fail, .jwt-fail,
 * .stream-break, rect.phase) so that tests and readers' own tools can find them.
 */
import type { DrillRecord, TimeWindow, WorkloadOutcome } from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import { authorityColour } from './authority-colour.js';
import { durationLabel, secondsSince, windowSince } from './report-time.js';
import { predictedText, workloadName } from './workload-summary.js';
import { escapeAttribute as attr, escapeText as text } from './xml-escape.js';

const WIDTH = 1120;
const PLOT_LEFT = 290;
const PLOT_RIGHT = WIDTH - 24;
const STRIP_Y = 6;
const STRIP_HEIGHT = 20;
const ROWS_Y = 34;
const ROW_HEIGHT = 88;
const AXIS_HEIGHT = 46;
const NAME_CHARS = 30;
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";

/** Offsets within a row. SVIDs alternate between two lanes because a renewed SVID overlaps the one it replaces. */
const LANE = {
  svid: [9, 22],
  svidHeight: 10,
  predicted: 39,
  observed: 51,
  bandHeight: 8,
  handshake: 63,
  markHeight: 8,
  jwt: 78,
};

const COLOUR = {
  ink: '#24292f',
  muted: '#57606a',
  grid: '#e4e7eb',
  zebra: '#f8f9fb',
  steady: '#dde5ee',
  fault: '#f2c8c4',
  recovery: '#d2e9da',
  recoveryWash: '#2f855a',
  outage: '#c9303a',
  predicted: '#c98e12',
  predictedWindow: '#ecd496',
  gap: '#c9303a',
  handshakeFailure: '#c9303a',
  jwtFailure: '#b85c00',
  streamBreak: '#57606a',
};

const PHASES = [
  { name: 'steady', fill: COLOUR.steady },
  { name: 'fault', fill: COLOUR.fault },
  { name: 'recovery', fill: COLOUR.recovery },
] as const;

function n(value: number): string {
  return String(Math.round(value * 10) / 10);
}

interface Scale {
  start: number;
  end: number;
  x(at: number): number;
}

/**
 * From the drill's start (or its steady-state window's, which looks back from when it was measured)
 * to whatever the drill, the gaps or the predictions reach last.
 */
function scaleFor(drill: DrillRecord): Scale {
  const ends = [drill.finishedAt, drill.steady?.end, drill.fault?.end, drill.recovery?.end];
  for (const w of drill.workloads) {
    ends.push(w.predicted.recoveredBy?.latest, w.predicted.lossAt, ...w.observed.gaps.map((g) => g.end));
  }
  const start = Math.min(drill.startedAt, drill.steady?.start ?? drill.startedAt);
  const end = Math.max(start + 1000, ...ends.filter((e): e is number => e !== undefined));
  const width = PLOT_RIGHT - PLOT_LEFT;
  return { start, end, x: (at) => PLOT_LEFT + ((at - start) / (end - start)) * width };
}

/** A round tick step in seconds giving at most ten ticks. */
function tickStep(spanSeconds: number): number {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400];
  return steps.find((s) => spanSeconds / s <= 10) ?? 86400 * Math.ceil(spanSeconds / 86400 / 10);
}

/** Authorities in order of first use across the drill, each with its colour (the same in every report). */
function authorityColours(drill: DrillRecord): Map<string, string> {
  const colours = new Map<string, string>();
  const svids = drill.workloads.flatMap((w) => w.observed.svids).sort((a, b) => a.at - b.at);
  for (const svid of svids)
    if (!colours.has(svid.authority)) colours.set(svid.authority, authorityColour(svid.authority));
  return colours;
}

function rect(
  cls: string,
  x1: number,
  x2: number,
  y: number,
  height: number,
  fill: string,
  title: string,
  data = '',
  extra = '',
): string {
  return (
    `<rect class="${cls}"${data} x="${n(x1)}" y="${n(y)}" width="${n(Math.max(1, x2 - x1))}" height="${n(height)}" ` +
    `fill="${fill}"${extra}><title>${text(title)}</title></rect>`
  );
}

const TEXT_STYLE: Record<string, string> = {
  'phase-label': `fill="${COLOUR.ink}" font-size="11"`,
  'tick-label': `fill="${COLOUR.muted}" font-size="11"`,
  'axis-title': `fill="${COLOUR.muted}" font-size="11"`,
  'lane-label': `fill="${COLOUR.muted}" font-size="10"`,
  'workload-name': `fill="${COLOUR.ink}" font-size="12.5" font-weight="600"`,
  'workload-group': `fill="${COLOUR.muted}" font-size="11"`,
  empty: `fill="${COLOUR.muted}" font-size="12"`,
};

function textAt(cls: string, x: number, y: number, content: string, extra = '', title = ''): string {
  const tooltip = title ? `<title>${text(title)}</title>` : '';
  return `<text class="${cls}" x="${n(x)}" y="${n(y)}" ${TEXT_STYLE[cls] ?? ''}${extra}>${text(content)}${tooltip}</text>`;
}

function defs(key: string, height: number): string {
  return [
    '<defs>',
    `<clipPath id="${key}-plot"><rect x="${PLOT_LEFT}" y="0" width="${PLOT_RIGHT - PLOT_LEFT}" height="${height}"/></clipPath>`,
    `<pattern id="${key}-outage" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">`,
    `<rect width="8" height="8" fill="${COLOUR.outage}" fill-opacity="0.07"/>`,
    `<line x1="0" y1="0" x2="0" y2="8" stroke="${COLOUR.outage}" stroke-opacity="0.22" stroke-width="3"/></pattern>`,
    `<pattern id="${key}-possible" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">`,
    `<rect width="6" height="6" fill="${COLOUR.predictedWindow}"/>`,
    `<line x1="0" y1="0" x2="0" y2="6" stroke="${COLOUR.predicted}" stroke-width="2.5"/></pattern>`,
    '</defs>',
  ].join('');
}

function phaseWindows(
  drill: DrillRecord,
): { name: (typeof PHASES)[number]['name']; fill: string; window: TimeWindow }[] {
  return PHASES.flatMap((p) => {
    const window = drill[p.name];
    return window ? [{ name: p.name, fill: p.fill, window }] : [];
  });
}

/** The strip of phases above the rows, the recovery's wash and the outage across every row. */
function phases(drill: DrillRecord, scale: Scale, key: string, rowsBottom: number): string[] {
  const parts: string[] = [];
  for (const { name, fill, window } of phaseWindows(drill)) {
    const x1 = scale.x(window.start);
    const x2 = scale.x(window.end);
    // The longest wording that fits the band: a short phase (the steady state) still says what it is.
    const labels =
      name === 'fault'
        ? [`fault · outage ${durationLabel(drill.outageSeconds)}`, 'fault']
        : name === 'steady'
          ? ['steady state', 'steady']
          : ['recovery', 'rec.'];
    const title = `${labels[0]}: ${windowSince(drill.startedAt, window.start, window.end)}`;
    parts.push(rect('phase', x1, x2, STRIP_Y, STRIP_HEIGHT, fill, title, ` data-phase="${name}"`, ' rx="3"'));
    const label = labels.find((l) => x2 - x1 > l.length * 6.4 + 8);
    if (label)
      parts.push(
        textAt(
          'phase-label',
          (x1 + x2) / 2,
          STRIP_Y + 14,
          label,
          ` text-anchor="middle" data-phase="${name}"`,
        ),
      );
    if (name === 'recovery')
      parts.push(
        rect(
          'recovery',
          x1,
          x2,
          ROWS_Y,
          rowsBottom - ROWS_Y,
          COLOUR.recoveryWash,
          title,
          '',
          ' fill-opacity="0.05"',
        ),
      );
    if (name === 'fault')
      parts.push(
        rect(
          'outage',
          x1,
          x2,
          ROWS_Y,
          rowsBottom - ROWS_Y,
          `url(#${key}-outage)`,
          `outage ${durationLabel(drill.outageSeconds)}: ${title}`,
          ` data-start="${window.start}" data-end="${window.end}"`,
        ),
      );
  }
  return parts;
}

/** Dashed edges of the outage, drawn over the rows so the window reads through the bars. */
function outageEdges(drill: DrillRecord, scale: Scale, rowsBottom: number): string[] {
  if (!drill.fault) return [];
  return [drill.fault.start, drill.fault.end].map(
    (at) =>
      `<line class="outage-edge" x1="${n(scale.x(at))}" y1="${STRIP_Y}" x2="${n(scale.x(at))}" y2="${rowsBottom}" ` +
      `stroke="${COLOUR.outage}" stroke-width="1.2" stroke-dasharray="4 3"/>`,
  );
}

/** Ticks in seconds since the drill started: negative before it, where the steady state looked back. */
function axis(scale: Scale, startedAt: number, rowsBottom: number): string[] {
  const step = tickStep((scale.end - scale.start) / 1000);
  const parts = [
    `<line class="axis" x1="${PLOT_LEFT}" y1="${rowsBottom}" x2="${PLOT_RIGHT}" y2="${rowsBottom}" stroke="${COLOUR.muted}"/>`,
  ];
  const first = Math.ceil((scale.start - startedAt) / 1000 / step) * step;
  for (let s = first; startedAt + s * 1000 <= scale.end + 1e-6; s += step) {
    const x = n(scale.x(startedAt + s * 1000));
    parts.push(
      `<line class="grid" x1="${x}" y1="${ROWS_Y}" x2="${x}" y2="${rowsBottom}" stroke="${COLOUR.grid}"/>`,
      `<line class="tick" x1="${x}" y1="${rowsBottom}" x2="${x}" y2="${rowsBottom + 5}" stroke="${COLOUR.muted}"/>`,
      textAt('tick-label', Number(x), rowsBottom + 18, String(s), ' text-anchor="middle"'),
    );
  }
  parts.push(
    textAt(
      'axis-title',
      (PLOT_LEFT + PLOT_RIGHT) / 2,
      rowsBottom + 38,
      'seconds since the drill started',
      ' text-anchor="middle"',
    ),
  );
  return parts;
}

function svidBars(
  workload: WorkloadOutcome,
  drill: DrillRecord,
  scale: Scale,
  y: number,
  colours: Map<string, string>,
) {
  return [...workload.observed.svids]
    .sort((a, b) => a.notBefore - b.notBefore)
    .flatMap((svid, i) => {
      const top = y + (LANE.svid[i % 2] ?? 0);
      const colour = colours.get(svid.authority) ?? COLOUR.ink;
      const x1 = scale.x(svid.notBefore);
      const title =
        `SVID ${svid.serial}: valid ${windowSince(drill.startedAt, svid.notBefore, svid.notAfter)}, ` +
        `received at ${secondsSince(drill.startedAt, svid.at)}, signed by authority ${svid.authority}`;
      const data = ` data-serial="${attr(svid.serial)}" data-authority="${attr(svid.authority)}"`;
      const received = scale.x(svid.at);
      return [
        rect('svid', x1, scale.x(svid.notAfter), top, LANE.svidHeight, colour, title, data, ' rx="2"'),
        // The start of a bar is a renewal; a darker tick marks when the probe received it.
        `<line class="svid-received" x1="${n(received)}" y1="${n(top)}" x2="${n(received)}" y2="${n(top + LANE.svidHeight)}" stroke="${COLOUR.ink}" stroke-width="1.5"/>`,
      ];
    });
}

function predictedBand(
  workload: WorkloadOutcome,
  drill: DrillRecord,
  scale: Scale,
  y: number,
  key: string,
): string[] {
  const { predicted } = workload;
  if (predicted.loss === 'never' || predicted.lossAt === undefined) return [];
  const top = y + LANE.predicted;
  const title = `predicted: ${predictedText(predicted, drill.startedAt)}`;
  const data = ` data-loss="${predicted.loss}"`;
  const earliest = predicted.recoveredBy?.earliest ?? scale.end;
  const latest = predicted.recoveredBy?.latest ?? scale.end;
  const lossFill = predicted.loss === 'always' ? COLOUR.predicted : `url(#${key}-possible)`;
  return [
    rect(
      'predicted-loss',
      scale.x(predicted.lossAt),
      scale.x(earliest),
      top,
      LANE.bandHeight,
      lossFill,
      title,
      data,
    ),
    ...(latest > earliest
      ? [
          rect(
            'predicted-recovery',
            scale.x(earliest),
            scale.x(latest),
            top,
            LANE.bandHeight,
            COLOUR.predictedWindow,
            title,
            data,
          ),
        ]
      : []),
  ];
}

function gaps(workload: WorkloadOutcome, drill: DrillRecord, scale: Scale, y: number): string[] {
  return workload.observed.gaps.map((gap) =>
    rect(
      'gap',
      scale.x(gap.start),
      scale.x(gap.end),
      y + LANE.observed,
      LANE.bandHeight,
      COLOUR.gap,
      `observed: no valid SVID ${windowSince(drill.startedAt, gap.start, gap.end)} (${((gap.end - gap.start) / 1000).toFixed(1)} s)`,
      ` data-start="${gap.start}" data-end="${gap.end}"`,
    ),
  );
}

/** The probes' failures: mTLS handshakes as ticks, JWT-SVIDs as dots, Workload API stream breaks as crosses. */
function failureMarks(samples: ProbeSample[], drill: DrillRecord, scale: Scale, y: number): string[] {
  const parts: string[] = [];
  for (const s of samples) {
    if (s.kind === 'svid' || s.kind === 'identities' || s.ok) continue;
    const x = scale.x(s.at);
    const when = secondsSince(drill.startedAt, s.at);
    const why = s.error ? `: ${s.error}` : '';
    if (s.kind === 'handshake')
      parts.push(
        rect(
          'hs-fail',
          x - 1,
          x + 1,
          y + LANE.handshake,
          LANE.markHeight,
          COLOUR.handshakeFailure,
          `mTLS handshake with ${s.peer} failed at ${when}${why}`,
          ` data-at="${s.at}"`,
        ),
      );
    else if (s.kind === 'jwt')
      parts.push(
        `<circle class="jwt-fail" data-at="${s.at}" cx="${n(x)}" cy="${y + LANE.jwt}" r="3" fill="${COLOUR.jwtFailure}"><title>${text(`JWT-SVID fetch or validation failed at ${when}${why}`)}</title></circle>`,
      );
    else {
      const cy = y + LANE.jwt;
      parts.push(
        `<path class="stream-break" data-at="${s.at}" d="M${n(x - 3)} ${cy - 3}L${n(x + 3)} ${cy + 3}M${n(x - 3)} ${cy + 3}L${n(x + 3)} ${cy - 3}" stroke="${COLOUR.streamBreak}" stroke-width="1.5"><title>${text(`Workload API stream broke at ${when}${why}`)}</title></path>`,
      );
    }
  }
  return parts;
}

function truncate(name: string): string {
  return name.length > NAME_CHARS ? `…${name.slice(name.length - NAME_CHARS + 1)}` : name;
}

function workloadRow(
  workload: WorkloadOutcome,
  index: number,
  drill: DrillRecord,
  samples: ProbeSample[],
  scale: Scale,
  key: string,
  colours: Map<string, string>,
): string {
  const y = ROWS_Y + index * ROW_HEIGHT;
  const laneLabel = (content: string, offset: number) =>
    textAt('lane-label', PLOT_LEFT - 8, y + offset, content, ' text-anchor="end"');
  const own = samples.filter((s) => s.workload === workload.spiffeId);
  return [
    `<g class="workload" data-workload="${attr(workload.spiffeId)}" data-group="${attr(workload.group)}" data-row="${index}">`,
    textAt('workload-name', 12, y + 26, truncate(workloadName(workload.spiffeId)), '', workload.spiffeId),
    textAt('workload-group', 12, y + 44, `${workload.group} · ${workload.observed.svids.length} SVIDs`),
    laneLabel('SVIDs', (LANE.svid[1] ?? 0) + 1),
    laneLabel('predicted loss', LANE.predicted + 7),
    laneLabel('observed gap', LANE.observed + 7),
    laneLabel('mTLS fail', LANE.handshake + 7),
    laneLabel('JWT / stream', LANE.jwt + 3),
    `<g clip-path="url(#${key}-plot)">`,
    ...svidBars(workload, drill, scale, y, colours),
    ...predictedBand(workload, drill, scale, y, key),
    ...gaps(workload, drill, scale, y),
    ...failureMarks(own, drill, scale, y),
    '</g>',
    `<line class="row-rule" x1="0" y1="${y + ROW_HEIGHT}" x2="${WIDTH}" y2="${y + ROW_HEIGHT}" stroke="${COLOUR.grid}"/>`,
    '</g>',
  ].join('');
}

/** Every other row a shade darker, under everything else so the outage shows through. */
function zebra(rows: number): string[] {
  const parts: string[] = [];
  for (let i = 1; i < rows; i += 2)
    parts.push(
      `<rect class="zebra" x="0" y="${ROWS_Y + i * ROW_HEIGHT}" width="${WIDTH}" height="${ROW_HEIGHT}" fill="${COLOUR.zebra}"/>`,
    );
  return parts;
}

function swatch(inner: string): string {
  return `<svg class="swatch" width="24" height="12" viewBox="0 0 24 12" aria-hidden="true">${inner}</svg>`;
}

function legend(key: string, colours: Map<string, string>): string {
  const item = (inner: string, label: string) => `<li>${swatch(inner)}<span>${text(label)}</span></li>`;
  const box = (fill: string, extra = '') =>
    `<rect x="1" y="1" width="22" height="10" rx="2" fill="${fill}"${extra}/>`;
  const authorities = [...colours].map(([authority, colour]) =>
    item(
      box(colour),
      `SVID valid NotBefore → NotAfter, signed by ${authority.slice(0, 16)}${authority.length > 16 ? '…' : ''}`,
    ),
  );
  return [
    '<ul class="legend">',
    item(box(COLOUR.steady), 'steady state'),
    item(box(COLOUR.fault), 'fault held'),
    item(box(COLOUR.recovery), 'recovery'),
    item(box(`url(#${key}-outage)`, ` stroke="${COLOUR.outage}" stroke-dasharray="3 2"`), 'outage window'),
    ...(authorities.length ? authorities : [item(box(COLOUR.muted), 'SVID valid NotBefore → NotAfter')]),
    item(
      `<rect x="1" y="1" width="22" height="10" fill="#dfe3e8"/><line x1="8" y1="1" x2="8" y2="11" stroke="${COLOUR.ink}" stroke-width="1.5"/>`,
      'received (a new bar is a renewal)',
    ),
    item(box(COLOUR.predicted), 'predicted loss'),
    item(box(COLOUR.predictedWindow), 'predicted recovery window'),
    item(box(`url(#${key}-possible)`), 'possible loss'),
    item(box(COLOUR.gap), 'observed gap: no valid SVID'),
    item(
      `<rect x="11" y="1" width="2" height="10" fill="${COLOUR.handshakeFailure}"/>`,
      'mTLS handshake failed',
    ),
    item(`<circle cx="12" cy="6" r="3" fill="${COLOUR.jwtFailure}"/>`, 'JWT-SVID failed'),
    item(
      `<path d="M9 3L15 9M9 9L15 3" stroke="${COLOUR.streamBreak}" stroke-width="1.5"/>`,
      'Workload API stream broke',
    ),
    '</ul>',
  ].join('');
}

/**
 * The figure for one drill. `key` makes the SVG's ids unique within the page (several drills share
 * one report); `samples` are the drill's probe samples, matched to workloads by SPIFFE ID.
 */
export function renderTimeline(drill: DrillRecord, samples: ProbeSample[], key: string): string {
  const scale = scaleFor(drill);
  const colours = authorityColours(drill);
  const rows = Math.max(1, drill.workloads.length);
  const rowsBottom = ROWS_Y + rows * ROW_HEIGHT;
  const height = rowsBottom + AXIS_HEIGHT;
  const label = `Timeline of ${drill.scenario} ${drill.outage}: ${drill.workloads.length} workloads over ${durationLabel(Math.round((scale.end - scale.start) / 1000))}`;
  const body = drill.workloads.length
    ? drill.workloads.map((w, i) => workloadRow(w, i, drill, samples, scale, key, colours))
    : [textAt('empty', PLOT_LEFT + 8, ROWS_Y + ROW_HEIGHT / 2, 'No workload was recorded for this drill.')];
  return [
    '<figure class="timeline-figure">',
    `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" data-run-id="${attr(drill.runId)}" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-label="${attr(label)}" font-family="${FONT}">`,
    defs(key, height),
    ...zebra(rows),
    ...phases(drill, scale, key, rowsBottom),
    ...axis(scale, drill.startedAt, rowsBottom),
    ...body,
    ...outageEdges(drill, scale, rowsBottom),
    '</svg>',
    legend(key, colours),
    '</figure>',
  ].join('\n');
}
