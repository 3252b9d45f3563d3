import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareFidelity } from '../../reports/fidelity-comparison.js';
import { renderFidelityHtml } from '../../reports/fidelity-html.js';
import { renderFidelityJson } from '../../reports/fidelity-json.js';
import { writeFidelityReport } from '../../reports/write-report.js';
import { FAILED_RUN, GAP_WORKLOAD, PASSED_RUN } from '../support/sample-suite.js';
import { sampleFidelity } from '../support/sample-fidelity.js';

/** The spire side loses GAP_WORKLOAD's identity 5 s longer in the long drill: beyond the 1 s sync interval. */
const fixture = sampleFidelity((drill) => {
  if (drill.runId !== `${FAILED_RUN}-spire`) return drill;
  const w = drill.workloads.find((x) => x.spiffeId === GAP_WORKLOAD)!;
  w.observed.gaps = w.observed.gaps.map((g) => ({ ...g, end: g.end + 5000 }));
  return drill;
});
const comparison = compareFidelity(fixture.record, fixture.runs);
const html = renderFidelityHtml(comparison, fixture.runs.flat());

/** The markup of drill comparison `index`: from its section to the next one (its cards nest sections). */
function section(index: number): string {
  const cards = html.split('<section class="card fidelity-drill').slice(1);
  const card = cards[index];
  if (card === undefined) throw new Error(`no drill comparison ${index}`);
  expect(card).toContain(`id="fidelity-${index}"`);
  return card;
}

describe('fidelity.html', () => {
  it('is one self-contained page with unique ids', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|\ssrc=/i);
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('opens with both suite runs, the threshold and how many drills agree', () => {
    expect(html).toContain('<h1>Fidelity of suite ci: tspire beside spire</h1>');
    expect(html).toContain('one sync interval (1 s) are flagged');
    expect(html).toContain('<code>fidelity-ci-0a1b2c-1-tspire</code>');
    expect(html).toContain('<code>fidelity-ci-0a1b2c-2-spire</code>');
    expect(html).toContain(
      '<span class="verdict passed">1 agree</span><span class="verdict failed">1 differ</span>',
    );
    expect(html).toContain('<tr class="same"><td><a href="#fidelity-0">lb-down</a></td><td>short</td>');
    expect(html).toContain('<tr class="flagged"><td><a href="#fidelity-1">lb-down</a></td><td>long</td>');
  });

  it('marks a drill in agreement as such, with no flagged row', () => {
    const short = section(0);
    expect(short).toContain('data-scenario="lb-down" data-outage="short" data-agree="true"');
    expect(short).toContain(
      '<p class="agree">Agree: no figure differs by more than one sync interval (1 s).</p>',
    );
    expect(short).not.toContain('class="flagged"');
  });

  it('flags the rows that differ and lists the difference with both runs’ evidence', () => {
    const long = section(1);
    expect(long).toContain('data-agree="false"');
    const flagged = [
      ...long.matchAll(/<tr class="flagged" data-figure="([^"]+)"(?: data-workload="([^"]+)")?/g),
    ].map((m) => [m[1], m[2]]);
    expect(flagged).toEqual([
      ['recovery', undefined],
      ['observed-loss', GAP_WORKLOAD],
    ]);
    expect(long).toContain('<thead><tr><th></th><th>tspire</th><th>spire</th></tr></thead>');
    expect(long).toMatch(/data-figure="recovery"><td>[^<]*<\/td><td>45 s · 2 s<\/td><td>45 s · 7 s<\/td>/);
    const items = [...long.matchAll(/<li data-figure="([^"]+)"/g)].map((m) => m[1]);
    expect(items).toEqual(['observed-loss', 'recovery']);
    expect(long).toContain('<li>tspire: 37 s without identity (10.0–47.0 s after the fault began)</li>');
    expect(long).toContain('<li>spire: 42 s without identity (10.0–52.0 s after the fault began)</li>');
  });

  it('lists a different prediction as a note, its row not flagged', () => {
    const noted = sampleFidelity((drill) => {
      if (drill.runId !== `${PASSED_RUN}-spire`) return drill;
      drill.workloads[0]!.predicted = {
        loss: 'possibly',
        lossAt: drill.startedAt + 30_000,
        recoveredBy: { earliest: drill.startedAt + 35_000, latest: drill.startedAt + 40_000 },
      };
      return drill;
    });
    const page = renderFidelityHtml(compareFidelity(noted.record, noted.runs), noted.runs.flat());
    const short = page.split('<section class="card fidelity-drill')[1]!;
    expect(short).toContain('data-agree="true"');
    expect(short).not.toContain('class="flagged"');
    expect(short).toMatch(
      /<h3>Notes \(not flagged\)<\/h3>\n<ul class="notes"><li data-figure="predicted-loss"/,
    );
    expect(short).toContain('<li>spire: predicted possible loss of 0–10 s</li>');
  });

  it('folds each side’s own drill card, timeline included, under the comparison', () => {
    for (const [i, runId] of [
      [0, PASSED_RUN],
      [1, FAILED_RUN],
    ] as const) {
      const card = section(i);
      expect(card).toContain('<details class="run" data-implementation="tspire">');
      expect(card).toContain('<details class="run" data-implementation="spire">');
      const timelines = [...card.matchAll(/<svg class="timeline"[^>]*data-run-id="([^"]+)"/g)].map(
        (m) => m[1],
      );
      expect(timelines).toEqual([runId, `${runId}-spire`]);
    }
  });
});

describe('fidelity.json', () => {
  const json = renderFidelityJson(comparison);
  const parsed = JSON.parse(json);

  it('holds the record, the threshold and per drill both sides’ figures and the differences', () => {
    expect(Object.keys(parsed)).toEqual(['fidelity', 'thresholdSeconds', 'drills', 'differences']);
    expect(parsed.fidelity).toEqual(fixture.record);
    expect(parsed.thresholdSeconds).toBe(1);
    expect(parsed.differences).toBe(2);
    expect(parsed.drills).toHaveLength(2);
    const long = parsed.drills[1];
    expect(Object.keys(long)).toEqual(['scenario', 'outage', 'sides', 'workloads', 'differences', 'notes']);
    expect(Object.keys(long.sides[0])).toEqual([
      'runId',
      'verdict',
      'reason',
      'heldSeconds',
      'recoverySeconds',
    ]);
    expect(long.sides.map((s: { runId: string }) => s.runId)).toEqual([FAILED_RUN, `${FAILED_RUN}-spire`]);
    const gap = long.workloads.find((w: { spiffeId: string }) => w.spiffeId === GAP_WORKLOAD);
    expect(Object.keys(gap.sides[1])).toEqual([
      'group',
      'predicted',
      'observedLossSeconds',
      'observed',
      'renewals',
      'lossFromExpiry',
      'backAfterHeal',
    ]);
    expect(gap.sides.map((s: { observedLossSeconds: number }) => s.observedLossSeconds)).toEqual([37, 42]);
    expect(long.differences[0]).toEqual({
      figure: 'observed-loss',
      workload: GAP_WORKLOAD,
      summary: expect.stringMatching(/37 s on tspire, 42 s on spire/),
      evidence: [expect.stringMatching(/^tspire: /), expect.stringMatching(/^spire: /)],
    });
  });

  it('gives the same bytes for the same runs', () => {
    const again = compareFidelity(fixture.record, fixture.runs);
    expect(renderFidelityJson(again)).toBe(json);
  });

  it('is written beside fidelity.html, each file whole', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'fidelity-report-')), 'out');
    const paths = writeFidelityReport(dir, comparison, fixture.runs.flat());
    expect(paths).toEqual({ html: join(dir, 'fidelity.html'), json: join(dir, 'fidelity.json') });
    expect(readFileSync(paths.html, 'utf8')).toBe(html);
    expect(readFileSync(paths.json, 'utf8')).toBe(json);
  });
});
