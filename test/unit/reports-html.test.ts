import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { DrillRecord } from '../../scenarios/drill-record.js';
import { renderHtmlReport } from '../../reports/html-report.js';
import { FAILED_RUN, GAP_WORKLOAD, PASSED_RUN, sampleSuite } from '../support/sample-suite.js';

interface Element {
  tag: string;
  attrs: Record<string, string>;
  /** data-workload of the row the element is drawn in. */
  workload?: string;
}

type OrderedNode = { [tag: string]: OrderedNode[] } & { ':@'?: Record<string, string> };

/** Every element of an inline SVG, which the renderer writes as well-formed XML. */
function svgElements(svg: string): Element[] {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', preserveOrder: true });
  const found: Element[] = [];
  const walk = (nodes: OrderedNode[], workload?: string) => {
    for (const node of nodes) {
      const tag = Object.keys(node).find((k) => k !== ':@');
      if (!tag || tag === '#text') continue;
      const attrs = node[':@'] ?? {};
      const row = attrs.class === 'workload' ? attrs['data-workload'] : workload;
      found.push({ tag, attrs, workload: row });
      walk(node[tag] ?? [], row);
    }
  };
  walk(parser.parse(svg) as OrderedNode[]);
  return found;
}

function timelines(html: string): string[] {
  return [...html.matchAll(/<svg class="timeline"[\s\S]*?<\/svg>/g)].map((m) => m[0]);
}

function byClass(elements: Element[], cls: string, workload?: string): Element[] {
  return elements.filter((e) => e.attrs.class === cls && (workload === undefined || e.workload === workload));
}

function box(e: Element | undefined): { x: number; end: number } {
  if (!e) throw new Error('element missing');
  return { x: Number(e.attrs.x), end: Number(e.attrs.x) + Number(e.attrs.width) };
}

describe('renderHtmlReport', () => {
  const { suite, samples } = sampleSuite();
  const html = renderHtmlReport(suite, samples);

  it('is one self-contained page: no script, no external resource, the browser told to load nothing', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|\ssrc=/i);
    const addresses = [...html.matchAll(/\b(?:https?|file|data):[^"'\s)]*/g)].map((m) => m[0]);
    expect(new Set(addresses)).toEqual(new Set(['http://www.w3.org/2000/svg']));
    const urls = [...html.matchAll(/url\(([^)]*)\)/g)].map((m) => m[1]);
    expect(urls.length).toBeGreaterThan(0);
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const url of urls) expect(ids).toContain(url?.replace(/^#/, ''));
  });

  it('opens with a suite summary linking to each drill', () => {
    expect(html).toContain('<h1>Suite ci</h1>');
    expect(html).toContain(
      '<span class="verdict passed">1 passed</span><span class="verdict failed">1 failed</span>',
    );
    expect(html).toContain('<a href="#drill-0">lb-down</a>');
    expect(html).toContain('<a href="#drill-1">lb-down</a>');
    expect(html).toContain(`id="drill-1" data-run-id="${FAILED_RUN}" data-verdict="failed"`);
  });

  it('heads each drill with its scenario, outage, verdict and reason', () => {
    expect(html).toContain(
      '<span class="outage-class">long · 45 s outage</span> <span class="verdict failed">failed</span>',
    );
    expect(html).toContain(
      '<p class="reason failed">no workload loses identity: 2 of 3 workloads had a gap</p>',
    );
    expect(html).toContain(
      '<span class="outage-class">short · 8 s outage</span> <span class="verdict passed">passed</span>',
    );
  });

  it('draws one timeline per drill with a row per workload and a bar per SVID', () => {
    const svgs = timelines(html);
    expect(svgs).toHaveLength(2);
    for (const [i, drill] of suite.drills.entries()) {
      const elements = svgElements(svgs[i]!);
      expect(elements[0]?.attrs['data-run-id']).toBe(drill.runId);
      expect(byClass(elements, 'workload').map((e) => e.attrs['data-workload'])).toEqual(
        drill.workloads.map((w) => w.spiffeId),
      );
      for (const w of drill.workloads) {
        expect(byClass(elements, 'svid', w.spiffeId).map((e) => e.attrs['data-serial'])).toEqual(
          w.observed.svids.map((s) => s.serial),
        );
      }
      expect(byClass(elements, 'phase').map((e) => e.attrs['data-phase'])).toEqual([
        'steady',
        'fault',
        'recovery',
      ]);
    }
  });

  it('shades the outage where the fault was held, on the same time scale as the gaps and predictions', () => {
    const drill = suite.drills[1]!;
    const elements = svgElements(timelines(html)[1]!);
    const [outage, ...more] = byClass(elements, 'outage');
    expect(more).toHaveLength(0);
    expect(outage?.attrs['data-start']).toBe(String(drill.fault?.start));
    const fault = box(byClass(elements, 'phase').find((e) => e.attrs['data-phase'] === 'fault'));
    expect(box(outage)).toEqual(fault);
    const steady = box(byClass(elements, 'phase').find((e) => e.attrs['data-phase'] === 'steady'));
    expect(steady.end).toBeCloseTo(fault.x, 0);

    // Fault 20–65 s; the gap 30–67 s; the prediction 30 s → 65–72 s.
    const perSecond = (fault.end - fault.x) / 45;
    const [gap, ...otherGaps] = byClass(elements, 'gap', GAP_WORKLOAD);
    expect(otherGaps).toHaveLength(0);
    expect(box(gap).x).toBeCloseTo(fault.x + 10 * perSecond, 0);
    expect(box(gap).end).toBeCloseTo(fault.x + 47 * perSecond, 0);
    const [predicted] = byClass(elements, 'predicted-loss', GAP_WORKLOAD);
    expect(predicted?.attrs['data-loss']).toBe('always');
    expect(box(predicted).x).toBe(box(gap).x);
    expect(box(predicted).end).toBeCloseTo(fault.end, 0);
    expect(box(byClass(elements, 'predicted-recovery', GAP_WORKLOAD)[0]).end).toBeCloseTo(
      fault.x + 52 * perSecond,
      0,
    );

    const possible = byClass(elements, 'predicted-loss', 'spiffe://drill.test/east/agent-0/workload-1')[0];
    expect(possible?.attrs['data-loss']).toBe('possibly');
    expect(possible?.attrs.fill).toBe('url(#t1-possible)');
    const upstream = 'spiffe://drill.test/upstream/agent-0/workload-0';
    expect(byClass(elements, 'predicted-loss', upstream)).toHaveLength(0);
    expect(byClass(elements, 'gap', upstream)).toHaveLength(0);
  });

  it('marks every failed handshake, failed JWT and stream break on its workload’s row', () => {
    const drill = suite.drills[1]!;
    const elements = svgElements(timelines(html)[1]!);
    for (const w of drill.workloads) {
      expect(byClass(elements, 'hs-fail', w.spiffeId)).toHaveLength(w.observed.handshakes.failed);
      expect(byClass(elements, 'jwt-fail', w.spiffeId)).toHaveLength(w.observed.jwt.failed);
    }
    expect(drill.workloads[0]?.observed.handshakes.failed).toBeGreaterThan(0);
    expect(byClass(elements, 'stream-break', GAP_WORKLOAD)).toHaveLength(1);
    const passed = svgElements(timelines(html)[0]!);
    expect(byClass(passed, 'hs-fail')).toHaveLength(0);
    expect(byClass(passed, 'gap')).toHaveLength(0);
    expect(byClass(passed, 'outage')).toHaveLength(1);
  });

  it('has a legend and the numbers underneath', () => {
    expect(html.match(/<ul class="legend">/g)).toHaveLength(2);
    expect(html).toContain('<span>outage window</span>');
    expect(html).toContain('<span class="missed">✗ missed</span>');
    expect(html).toContain('(37.0–66.0 s) &amp; &lt;more&gt;</li>');
    expect(html).toContain('<td>loss at 30.0 s, recovered by 65.0–72.0 s</td>');
    expect(html).toContain('gap 30.0–67.0 s (37.0 s without identity)');
    expect(html).toContain('<td class="num">65 / <span class="missed">37</span></td>');
    expect(html).toContain('<td>load balancer lb is not accepting on :18081</td>');
    expect(html).toContain('<li>the upstream workload renewed through the outage');
  });

  it('renders a single drill on its own page', () => {
    const one = renderHtmlReport(suite.drills[0]!, samples);
    expect(one).not.toContain('Suite ci');
    expect(one).toContain('<title>Drill lb-down short · passed · spire-drill</title>');
    // A stored run of one drill (what `drill run --report` and `report <run>` render) is titled as a drill.
    expect(renderHtmlReport({ ...suite, suite: PASSED_RUN, drills: [suite.drills[0]!] }, samples)).toBe(one);
    expect(timelines(one)).toHaveLength(1);
    expect(svgElements(timelines(one)[0]!)[0]?.attrs['data-run-id']).toBe(PASSED_RUN);
  });

  it('draws the steady state inside the plot, labelled, when it looked back before the drill started', () => {
    const drill = suite.drills[0]!;
    const early = { ...drill, steady: { start: drill.startedAt - 12_000, end: drill.startedAt + 4000 } };
    const svg = timelines(renderHtmlReport(early, samples))[0]!;
    const elements = svgElements(svg);
    const band = elements.find((e) => e.tag === 'rect' && e.attrs['data-phase'] === 'steady')!;
    expect(Number(band.attrs.x)).toBeGreaterThanOrEqual(290);
    const labels = elements.filter((e) => e.tag === 'text' && e.attrs['data-phase'] === 'steady');
    expect(labels).toHaveLength(1);
    const ticks = [...svg.matchAll(/<text class="tick-label"[^>]*>(-?\d+)</g)].map((m) => Number(m[1]));
    expect(ticks).toContain(0);
    expect(ticks[0]).toBeLessThan(0);
  });

  it('colours an authority the same in every report', () => {
    const fills = (html: string) =>
      Object.fromEntries(
        byClass(svgElements(timelines(html)[0]!), 'svid').map((e) => [
          e.attrs['data-authority'],
          e.attrs.fill,
        ]),
      );
    const inSuite = fills(renderHtmlReport(suite, samples));
    const alone = renderHtmlReport(suite.drills[1]!, samples);
    const authority = 'e45f0011223344556677889900aabbccddeeff00';
    expect(fills(alone)[authority]).toBe(inSuite[authority]);
    expect(inSuite[authority]).toMatch(/^hsl\(/);
    expect(inSuite['a1b2c3d4e5f60718293a4b5c6d7e8f9001122334']).not.toBe(inSuite[authority]);
  });

  it('shows what was measured per workload, a healthy run too', () => {
    const one = renderHtmlReport(suite.drills[0]!, samples);
    expect(one).toContain('<h3>Measured per workload</h3>');
    expect(one).toContain('<th class="num">mTLS p99</th>');
    expect(one).toMatch(
      /<td class="num">4 ms<\/td><td class="num">4 ms<\/td><td class="num">\d+ \/ 0<\/td><td class="num">3 ms<\/td>/,
    );
  });

  it('escapes what it prints and draws a drill that never reached its fault', () => {
    const early: DrillRecord = {
      ...suite.drills[0]!,
      scenario: '<img src=x onerror=alert(1)>',
      verdict: 'errored',
      reason: 'steady state not reached: "agent" & <server> down',
      fault: undefined,
      recovery: undefined,
      workloads: [],
      expectations: [],
      injections: [],
    };
    const page = renderHtmlReport(early, {});
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(page).toContain('steady state not reached: "agent" &amp; &lt;server&gt; down');
    const elements = svgElements(timelines(page)[0]!);
    expect(byClass(elements, 'outage')).toHaveLength(0);
    expect(byClass(elements, 'workload')).toHaveLength(0);
    expect(page).toContain('No workload was recorded for this drill.');
    expect(page).toContain('No fault was injected.');
  });
});
