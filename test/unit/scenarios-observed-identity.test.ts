import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProbeSample, SvidSample } from '../../deployment/probes/probe-sample.js';
import { observeIdentity } from '../../scenarios/observed-identity.js';

const W = 'spiffe://example.org/w';

function svid(serial: string, at: number, notBefore: number, notAfter: number): SvidSample {
  return { kind: 'svid', at, workload: W, serial, notBefore, notAfter, authority: 'aa' };
}

const handshake = (at: number, ok: boolean): ProbeSample => ({
  kind: 'handshake',
  at,
  workload: W,
  peer: 'spiffe://example.org/p',
  ok,
  latencyMs: 2,
});
const jwt = (at: number, ok: boolean): ProbeSample => ({ kind: 'jwt', at, workload: W, ok, latencyMs: 3 });

describe('observeIdentity', () => {
  it('sees no gap while renewals arrive before expiry', () => {
    const samples = [svid('1', 0, -10, 30), svid('2', 15, 5, 45), svid('3', 30, 20, 60)];
    const observed = observeIdentity(samples, { start: 10, end: 50 });
    expect(observed.gaps).toEqual([]);
    // The SVID held at the window's start, then those received inside it.
    expect(observed.svids.map((s) => s.serial)).toEqual(['1', '2', '3']);
  });

  it('opens a gap at the held SVID’s NotAfter and closes it when a newer one arrives', () => {
    const samples = [svid('1', 0, -10, 30), svid('2', 42, 32, 72)];
    expect(observeIdentity(samples, { start: 5, end: 60 }).gaps).toEqual([{ start: 30, end: 42 }]);
  });

  it('counts the time before any SVID was received as a gap, and clips gaps to the window', () => {
    const samples = [svid('1', 20, 10, 50)];
    expect(observeIdentity(samples, { start: 0, end: 100 }).gaps).toEqual([
      { start: 0, end: 20 },
      { start: 50, end: 100 },
    ]);
    expect(observeIdentity([], { start: 0, end: 100 }).gaps).toEqual([{ start: 0, end: 100 }]);
    expect(observeIdentity(samples, { start: 25, end: 45 }).gaps).toEqual([]);
  });

  it('does not treat a re-sent serial as a renewal', () => {
    // The agent went away and came back re-sending the (by then expired) SVID: still no identity.
    const samples = [svid('1', 0, -10, 30), svid('1', 35, -10, 30), svid('2', 40, 30, 70)];
    const observed = observeIdentity(samples, { start: 0, end: 60 });
    expect(observed.gaps).toEqual([{ start: 30, end: 40 }]);
    expect(observed.svids.map((s) => [s.serial, s.at])).toEqual([
      ['1', 0],
      ['2', 40],
    ]);
  });

  it('merges touching gaps when an already expired SVID arrives in the middle', () => {
    const samples = [svid('1', 0, -10, 30), svid('2', 35, -5, 32), svid('3', 50, 40, 80)];
    expect(observeIdentity(samples, { start: 0, end: 70 }).gaps).toEqual([{ start: 30, end: 50 }]);
  });

  it('counts handshakes and JWT-SVIDs inside the window only, samples in any order', () => {
    const samples = [
      handshake(5, true),
      jwt(9, false),
      handshake(10, true),
      handshake(12, false),
      jwt(11, true),
      svid('1', 0, -10, 100),
      handshake(20, true),
    ];
    const observed = observeIdentity(samples, { start: 10, end: 20 });
    expect(observed.handshakes).toEqual({ ok: 1, failed: 1 });
    expect(observed.jwt).toEqual({ ok: 1, failed: 0 });
  });

  it('marks exactly the instants without a valid SVID (property, against a brute-force reading)', () => {
    const svidArb = fc
      .record({
        at: fc.integer({ min: 0, max: 200 }),
        serial: fc.integer({ min: 0, max: 12 }).map(String),
        notBefore: fc.integer({ min: -20, max: 220 }),
        life: fc.integer({ min: -5, max: 60 }),
      })
      .map((r) => svid(r.serial, r.at, r.notBefore, r.notBefore + r.life));
    fc.assert(
      fc.property(
        fc.array(svidArb, { maxLength: 12 }),
        fc.integer({ min: -10, max: 210 }),
        fc.integer({ min: 0, max: 150 }),
        (samples, start, length) => {
          const window = { start, end: start + length };
          const { gaps } = observeIdentity(samples, window);
          // Sorted, disjoint, not touching, non-empty, inside the window.
          gaps.forEach((gap, i) => {
            expect(gap.start).toBeLessThan(gap.end);
            expect(gap.start).toBeGreaterThanOrEqual(window.start);
            expect(gap.end).toBeLessThanOrEqual(window.end);
            if (i > 0) expect(gap.start).toBeGreaterThan(gaps[i - 1]!.end);
          });
          // The first receipt of each serial, in time order (a stable sort keeps input order on ties).
          const firsts = [...samples]
            .sort((a, b) => a.at - b.at)
            .filter((s, i, all) => all.findIndex((o) => o.serial === s.serial) === i);
          for (let t = window.start; t < window.end; t++) {
            const held = firsts.filter((s) => s.at <= t).at(-1);
            const valid = held !== undefined && held.notBefore <= t && t < held.notAfter;
            const inGap = gaps.some((g) => g.start <= t && t < g.end);
            expect(inGap, `t=${t}`).toBe(!valid);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
