import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatGoDuration, formatShortDuration, parseDuration } from '../../identity-core/config/duration.js';

describe('parseDuration (Go syntax)', () => {
  it.each([
    ['1h', 3600],
    ['30s', 30],
    ['1h30m', 5400],
    ['5m', 300],
    ['1.5h', 5400],
    ['300ms', 0.3],
    ['2h45m30.5s', 9930.5],
    ['0', 0],
    ['0s', 0],
    ['-1m', -60],
    ['+10s', 10],
    ['1500us', 0.0015],
    ['1500µs', 0.0015],
    ['7ns', 7e-9],
    ['.5s', 0.5],
    ['24h0m0s', 86400],
  ])('%s → %s s', (text, seconds) => {
    expect(parseDuration(text)).toBeCloseTo(seconds, 12);
  });

  it.each(['', '1', '1x', 'h', '1 h', '1h 30m', '1d', '-', '.s', 'abc', '10S', '1h-5m'])(
    'rejects %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

describe('formatGoDuration', () => {
  it.each([
    [0, '0s'],
    [999, '999ns'],
    [1500, '1.5µs'],
    [3_456_789, '3.456789ms'],
    [1_000_000_000, '1s'],
    [2_500_000_000, '2.5s'],
    [90e9, '1m30s'],
    [3600e9, '1h0m0s'],
    [5430.25e9, '1h30m30.25s'],
    [-2e9, '-2s'],
  ])('%d ns → %s', (ns, text) => {
    expect(formatGoDuration(ns)).toBe(text);
  });

  it('round-trips whole seconds through parseDuration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 365 * 86400 }), (seconds) => {
        expect(parseDuration(formatGoDuration(BigInt(seconds) * 1_000_000_000n))).toBe(seconds);
      }),
    );
  });
});

describe('formatShortDuration', () => {
  it.each([
    [4 * 3600, '4h'],
    [5400, '1h30m'],
    [300, '5m'],
    [90, '1m30s'],
    [36 * 3600, '36h'],
    [0.5, '0s'],
  ])('%d s → %s', (seconds, text) => {
    expect(formatShortDuration(seconds)).toBe(text);
  });
});
