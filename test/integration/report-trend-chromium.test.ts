import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorityColour } from '../../reports/authority-colour.js';
import { withResults } from '../../results/results-store.js';
import type { DrillRecord } from '../../scenarios/drill-record.js';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';
import { chromium, count, hslToRgb, pixelsNear } from '../support/chromium.js';
import { decodePng } from '../support/png.js';
import { makeRunDir } from '../support/run-dir.js';
import { FAILED_RUN, PASSED_RUN, sampleSuite } from '../support/sample-suite.js';
import { repoRoot } from '../support/tools.js';

/**
 * Runs over time and side by side, as an SRE reads them: six stored runs of one scenario (a week
 * apart, the later ones recovering more slowly), rendered by `spire-drill report --trend`,
 * `--compare` and `report <run>` from the results store, then loaded and screenshotted in headless
 * Chromium.
 */
const WEEK = 7 * 24 * 3600 * 1000;
const AUTHORITY = 'e45f0011223344556677889900aabbccddeeff00';

/** Run `i`: the sample's failed lb-down long drill moved `i` weeks on, its gaps `i` seconds longer. */
function storedRun(base: DrillRecord, samples: ProbeSample[], i: number) {
  const shift = (t: number) => t + i * WEEK;
  const record: DrillRecord = {
    ...base,
    runId: `lb-down-long-trend-${i}`,
    verdict: i % 3 === 2 ? 'passed' : 'failed',
    startedAt: shift(base.startedAt),
    finishedAt: shift(base.finishedAt),
    ...(base.steady ? { steady: { start: shift(base.steady.start), end: shift(base.steady.end) } } : {}),
    ...(base.fault ? { fault: { start: shift(base.fault.start), end: shift(base.fault.end) } } : {}),
    ...(base.recovery
      ? { recovery: { start: shift(base.recovery.start), end: shift(base.recovery.end) } }
      : {}),
    workloads: base.workloads.map((w) => ({
      ...w,
      observed: {
        ...w.observed,
        gaps: w.observed.gaps.map((g) => ({ start: shift(g.start), end: shift(g.end) + i * 1000 })),
        svids: w.observed.svids.map((v) => ({
          ...v,
          at: shift(v.at),
          notBefore: shift(v.notBefore),
          notAfter: shift(v.notAfter),
        })),
      },
    })),
  };
  const moved = samples.map((s) => ({
    ...s,
    at: shift(s.at),
    ...('latencyMs' in s ? { latencyMs: s.latencyMs + i } : {}),
  })) as ProbeSample[];
  return { record, samples: moved };
}

describe('trends and comparisons from the results store, in headless Chromium', () => {
  const run = makeRunDir('sd-trend-');
  const home = join(run.dir, 'deployments');
  const out = join(run.dir, 'reports');
  const profile = `--user-data-dir=${join(run.dir, 'profile')}`;
  const { suite, samples } = sampleSuite();
  const failed = suite.drills.find((d) => d.runId === FAILED_RUN)!;
  const runs = [0, 1, 2, 3, 4, 5].map((i) => storedRun(failed, samples[FAILED_RUN]!, i));

  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [join(repoRoot, 'bin', 'spire-drill.js'), ...args],
        { env: { ...process.env, SPIRE_DRILL_HOME: home, SPIRE_DRILL_RESULTS_URL: '' }, timeout: 120_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  // REPORT_SCREENSHOTS=<dir> keeps the screenshots there (e.g. as CI artifacts); else they go with the run.
  const shots = process.env.REPORT_SCREENSHOTS ?? run.dir;
  const screenshot = (page: string, name: string, height: number) => {
    mkdirSync(shots, { recursive: true });
    const shot = join(shots, name);
    chromium([
      profile,
      `--window-size=1200,${height}`,
      '--hide-scrollbars',
      `--screenshot=${shot}`,
      `file://${page}`,
    ]);
    const image = decodePng(readFileSync(shot));
    console.log(`screenshot ${shot}: ${image.width}×${image.height}`);
    return image;
  };

  beforeAll(async () => {
    const saved = process.env.SPIRE_DRILL_HOME;
    process.env.SPIRE_DRILL_HOME = home;
    try {
      await withResults(async (store) => {
        for (const r of runs) await store.saveDrill(r.record, r.samples);
        const passed = suite.drills.find((d) => d.runId === PASSED_RUN)!;
        await store.saveDrill(passed, samples[PASSED_RUN]!);
      });
    } finally {
      if (saved === undefined) delete process.env.SPIRE_DRILL_HOME;
      else process.env.SPIRE_DRILL_HOME = saved;
    }
  }, 120_000);
  afterAll(() => run.remove());

  it('plots every stored run of a scenario over time: verdicts, loss, recovery, handshake p99', async () => {
    const result = await cli(['report', '--trend', 'lb-down', '--outage', 'long', '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    const page = result.stdout.trim();
    expect(page).toBe(join(out, 'trend.html'));
    const dom = chromium([profile, '--dump-dom', `file://${page}`]);
    expect(dom).toContain('Trend of lb-down long');
    // Three charts, a dot per run in each; the short run is not a long one.
    expect(count(dom, /<svg class="trend"/g)).toBe(3);
    expect(count(dom, /<circle class="run"/g)).toBe(3 * runs.length);
    expect(dom).not.toContain(PASSED_RUN);
    // The recovery grows a second a week: 2 s after the heal at first, 7 s in the last run.
    expect(dom).toContain('lb-down-long-trend-0: 2 s (failed)');
    expect(dom).toContain('lb-down-long-trend-5: 7 s (passed)');
    const image = screenshot(page, 'trend.png', 1100);
    expect(pixelsNear(image, [0xcf, 0x22, 0x2e], 10), 'red dots of failed runs').toBeGreaterThan(200);
    expect(pixelsNear(image, [0x1a, 0x7f, 0x37], 10), 'green dots of passed runs').toBeGreaterThan(100);
  });

  it('puts two runs side by side, and an authority keeps its colour from one report to the other', async () => {
    const compared = await cli([
      'report',
      '--compare',
      runs[5]!.record.runId,
      runs[0]!.record.runId,
      '--out',
      out,
    ]);
    expect(compared.code, compared.stderr).toBe(0);
    const single = await cli(['report', runs[3]!.record.runId, '--out', join(out, 'single')]);
    expect(single.code, single.stderr).toBe(0);

    const compareDom = chromium([profile, '--dump-dom', `file://${compared.stdout.trim()}`]);
    expect(compareDom).toContain('Two runs of lb-down long');
    expect(count(compareDom, /<svg class="timeline"/g)).toBe(2);
    // The earlier run is A whatever the order given; recovery 2 s against 7 s.
    expect(compareDom).toMatch(
      /Recovery after the heal<\/td><td class="num">2 s<\/td><td class="num">7 s<\/td><td class="num">\+5 s</,
    );
    const singleDom = chromium([profile, '--dump-dom', `file://${single.stdout.trim()}`]);
    expect(singleDom).toContain('<title>Drill lb-down long · failed · spire-drill</title>');
    expect(singleDom).toContain('mTLS p99');

    const fill = (dom: string) =>
      new RegExp(
        `data-authority="${AUTHORITY}"[^>]*fill="([^"]+)"|fill="([^"]+)"[^>]*data-authority="${AUTHORITY}"`,
      ).exec(dom);
    const inCompare = fill(compareDom);
    const inSingle = fill(singleDom);
    expect(inCompare?.[1] ?? inCompare?.[2]).toBe(authorityColour(AUTHORITY));
    expect(inSingle?.[1] ?? inSingle?.[2]).toBe(authorityColour(AUTHORITY));
    const rgb = hslToRgb(authorityColour(AUTHORITY));
    const comparePixels = pixelsNear(screenshot(compared.stdout.trim(), 'compare.png', 2600), rgb);
    const singlePixels = pixelsNear(screenshot(single.stdout.trim(), 'single.png', 1600), rgb);
    expect(comparePixels).toBeGreaterThan(2_000);
    expect(singlePixels).toBeGreaterThan(1_000);
  });

  it('refuses a trend of nothing, a bad outage class and a comparison of one run, with exit 2', async () => {
    const none = await cli(['report', '--trend', 'no-such-scenario', '--out', out]);
    expect([none.code, none.stderr]).toEqual([
      2,
      expect.stringContaining('no stored run of no-such-scenario'),
    ]);
    const badOutage = await cli(['report', '--trend', 'lb-down', '--outage', 'huge', '--out', out]);
    expect(badOutage.code).toBe(2);
    expect(badOutage.stderr).toContain('--outage: expected short, medium or long (got huge)');
    const one = await cli(['report', '--compare', runs[0]!.record.runId, '--out', out]);
    expect([one.code, one.stderr]).toEqual([2, expect.stringContaining('--compare takes two run ids')]);
    for (const r of [none, badOutage, one]) expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});
