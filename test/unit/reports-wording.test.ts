import { describe, expect, it } from 'vitest';
import { durationLabel, secondsSince, utcTime, windowSince } from '../../reports/report-time.js';
import { observedText, predictedText, workloadName } from '../../reports/workload-summary.js';
import { escapeAttribute, escapeText } from '../../reports/xml-escape.js';

describe('report wording', () => {
  it.each([
    [8, '8 s'],
    [90, '90 s'],
    [12.5, '12.5 s'],
    [150, '150 s (2 m 30 s)'],
    [5400, '5400 s (1 h 30 m)'],
    [3601, '3601 s (1 h 1 s)'],
  ])('durationLabel(%s) is %j', (seconds, label) => {
    expect(durationLabel(seconds)).toBe(label);
  });

  it('words instants as seconds since the drill started, and wall-clock time in UTC', () => {
    expect(secondsSince(1_000, 13_340)).toBe('12.3 s');
    expect(windowSince(1_000, 31_000, 68_000)).toBe('30.0–67.0 s');
    expect(utcTime(Date.UTC(2026, 10, 26, 6, 1, 2, 900))).toBe('2026-11-26 06:01:02 UTC');
  });

  it('names a workload by the path of its SPIFFE ID', () => {
    expect(workloadName('spiffe://drill.test/east/agent-0/workload-1')).toBe('/east/agent-0/workload-1');
    expect(workloadName('not-an-id')).toBe('not-an-id');
  });

  it('words predicted and observed loss', () => {
    expect(predictedText({ loss: 'never' }, 0)).toBe('no loss');
    expect(
      predictedText({ loss: 'always', lossAt: 30_000, recoveredBy: { earliest: 65_000, latest: 72_500 } }, 0),
    ).toBe('loss at 30.0 s, recovered by 65.0–72.5 s');
    expect(predictedText({ loss: 'possibly', lossAt: 37_000 }, 0)).toBe('possible loss at 37.0 s');
    const observed = { svids: [], handshakes: { ok: 0, failed: 0 }, jwt: { ok: 0, failed: 0 } };
    expect(observedText({ ...observed, gaps: [] }, 0)).toBe('no gap');
    expect(
      observedText(
        {
          ...observed,
          gaps: [
            { start: 1_000, end: 3_500 },
            { start: 10_000, end: 11_000 },
          ],
        },
        0,
      ),
    ).toBe('gaps 1.0–3.5 s, 10.0–11.0 s (3.5 s without identity)');
  });

  it('escapes markup and replaces characters XML 1.0 forbids, keeping astral characters', () => {
    expect(escapeText('a < b && c > d "q"')).toBe('a &lt; b &amp;&amp; c &gt; d "q"');
    expect(escapeAttribute(`"it's"\n\tx`)).toBe('&quot;it&#39;s&quot;&#10;&#9;x');
    expect(escapeText('\u0000bell\u0007 \uFFFE \uDC00 🔐')).toBe('\uFFFDbell\uFFFD \uFFFD \uFFFD 🔐');
  });
});
