import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport, type ReportPaths } from '../../reports/write-report.js';
import { decodePng } from '../support/png.js';
import { chromium, count, hslToRgb, pixelsNear } from '../support/chromium.js';
import { authorityColour } from '../../reports/authority-colour.js';
import { FAILED_RUN, PASSED_RUN, sampleSuite } from '../support/sample-suite.js';
import { makeRunDir } from '../support/run-dir.js';

/**
 * The HTML report in a real browser: Debian's headless Chromium loads it from disk with networking
 * off, and what it parsed (--dump-dom) and painted (--screenshot) must show both drills' timelines.
 * Chromium is a required part of the suite: tools/install.sh installs it; without it this test fails.
 */

describe('the HTML report in headless Chromium', () => {
  const { suite, samples } = sampleSuite();
  const run = makeRunDir('sd-chromium-');
  const profile = `--user-data-dir=${join(run.dir, 'profile')}`;
  let paths: ReportPaths;

  beforeAll(() => {
    paths = writeReport(join(run.dir, 'report'), suite, samples);
  });
  afterAll(() => run.remove());

  it('parses both timelines with their rows, SVID bars, outage and gaps', () => {
    const dom = chromium([profile, '--dump-dom', `file://${paths.html}`]);
    const svgs = dom.match(/<svg class="timeline"[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs).toHaveLength(2);
    for (const [i, drill] of suite.drills.entries()) {
      const svg = svgs[i] ?? '';
      expect(svg).toContain(`data-run-id="${drill.runId}"`);
      expect(count(svg, /<g class="workload"/g)).toBe(drill.workloads.length);
      expect(count(svg, /<rect class="svid"/g)).toBe(
        drill.workloads.reduce((n, w) => n + w.observed.svids.length, 0),
      );
      expect(count(svg, /<rect class="outage"/g)).toBe(1);
      expect(count(svg, /<rect class="gap"/g)).toBe(
        drill.workloads.reduce((n, w) => n + w.observed.gaps.length, 0),
      );
      expect(count(svg, /class="hs-fail"/g)).toBe(
        drill.workloads.reduce((n, w) => n + w.observed.handshakes.failed, 0),
      );
    }
    expect(suite.drills.map((d) => d.runId)).toEqual([PASSED_RUN, FAILED_RUN]);
    expect(count(svgs[1] ?? '', /<rect class="gap"/g)).toBe(2);
    expect(dom).toContain('no workload loses identity: 2 of 3 workloads had a gap');
  });

  it('paints the timeline: bars, gaps and the shaded outage show in a screenshot', () => {
    const shot = join(run.dir, 'report.png');
    chromium([
      profile,
      '--window-size=1200,3200',
      '--hide-scrollbars',
      `--screenshot=${shot}`,
      `file://${paths.html}`,
    ]);
    const image = decodePng(readFileSync(shot));
    expect([image.width, image.height]).toEqual([1200, 3200]);

    const colours = new Set<number>();
    for (let i = 0; i < image.pixels.length; i += 4)
      colours.add(Buffer.from(image.pixels.subarray(i, i + 3)).readUIntBE(0, 3));
    expect(colours.size, 'a blank screenshot has a handful of colours').toBeGreaterThan(200);

    // The renderer's colours: SVIDs of the two authorities (each its own, from its key id), observed gaps
    // (red), the outage's red wash.
    const blueBars = pixelsNear(image, hslToRgb(authorityColour('a1b2c3d4e5f60718293a4b5c6d7e8f9001122334')));
    const purpleBars = pixelsNear(
      image,
      hslToRgb(authorityColour('e45f0011223344556677889900aabbccddeeff00')),
    );
    const red = pixelsNear(image, [0xc9, 0x30, 0x3a]);
    let outageWash = 0;
    for (let i = 0; i < image.pixels.length; i += 4) {
      const [r, g, b] = [image.pixels[i] ?? 0, image.pixels[i + 1] ?? 0, image.pixels[i + 2] ?? 0];
      if (r > 225 && r - g > 8 && r - b > 8) outageWash++;
    }
    console.log(
      `screenshot: ${colours.size} colours; SVID bars ${blueBars} + ${purpleBars} px; red ${red} px; outage wash ${outageWash} px`,
    );
    expect(blueBars).toBeGreaterThan(5_000);
    expect(purpleBars).toBeGreaterThan(5_000);
    // Two gaps of 37 s and 29 s on a 102 s axis, 8 px high, plus the failure ticks and the outage edges.
    expect(red).toBeGreaterThan(2_500);
    // Without the outage's shading across the rows (strips, predicted windows, legend) about 18,000 px match; with it, 80,000.
    expect(outageWash).toBeGreaterThan(40_000);
  });
});
