import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../identity-core/agent/backoff.js';
import { renewalTime } from '../../identity-core/agent/renewal-policy.js';
import { JwtSvidCache } from '../../identity-core/agent/jwt-svid-cache.js';
import { waitUntil } from '../support/waits.js';

describe('renewal time', () => {
  it('always falls while 45–55 % of the lifetime remains', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e9 }),
        fc.integer({ min: 10, max: 1e7 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (notBefore, lifetime, r) => {
          const notAfter = notBefore + lifetime;
          const remaining = (notAfter - renewalTime(notBefore, notAfter, () => r)) / lifetime;
          expect(remaining).toBeGreaterThanOrEqual(0.45 - 1e-6);
          expect(remaining).toBeLessThanOrEqual(0.55 + 1e-6);
        },
      ),
    );
  });

  it('spreads renewals over the whole window', () => {
    expect(renewalTime(0, 100, () => 0)).toBeCloseTo(55);
    expect(renewalTime(0, 100, () => 0.999999)).toBeCloseTo(45);
  });
});

describe('sync backoff', () => {
  it('starts at the interval, grows ×1.5 with ±10 % jitter, caps at min(8 min, 48 × interval), and resets', () => {
    const backoff = new Backoff(5000, () => 0.5);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([5000, 7500, 11250]);
    for (let i = 0; i < 30; i++) backoff.next();
    expect(backoff.next()).toBe(240_000);
    backoff.reset();
    expect(backoff.next()).toBe(5000);
    expect(new Backoff(20_000, () => 0.5).next()).toBe(20_000);
    const long = new Backoff(20_000, () => 0.5);
    for (let i = 0; i < 40; i++) long.next();
    expect(long.next()).toBe(480_000);
    const jittered = new Backoff(10_000, () => 0.999);
    expect(jittered.next()).toBeGreaterThan(10_000);
    expect(jittered.next()).toBeLessThanOrEqual(16_500);
  });
});

describe('JWT-SVID cache', () => {
  it('reuses a token until half its lifetime, then only while valid', () => {
    const cache = new JwtSvidCache();
    cache.put('spiffe://td/a', ['y', 'x'], { token: 't', issuedAt: 100, expiresAt: 400, keyId: 'k1' });
    expect(cache.fresh('spiffe://td/a', ['x', 'y'], 200)?.token).toBe('t');
    expect(cache.fresh('spiffe://td/a', ['x', 'y'], 260)).toBeUndefined();
    expect(cache.valid('spiffe://td/a', ['x', 'y'], 399)?.token).toBe('t');
    expect(cache.valid('spiffe://td/a', ['x', 'y'], 400)).toBeUndefined();
    expect(cache.fresh('spiffe://td/a', ['x'], 200)).toBeUndefined();
  });

  it('keeps at most its size, dropping the least recently used', () => {
    const cache = new JwtSvidCache(3);
    const svid = { token: 't', issuedAt: 100, expiresAt: 400, keyId: 'k1' };
    for (const audience of ['a', 'b', 'c']) cache.put('spiffe://td/w', [audience], svid);
    expect(cache.fresh('spiffe://td/w', ['a'], 150)).toBeDefined();
    cache.put('spiffe://td/w', ['d'], svid);
    expect(cache.size).toBe(3);
    expect(cache.valid('spiffe://td/w', ['b'], 150)).toBeUndefined();
    for (const audience of ['a', 'c', 'd'])
      expect(cache.valid('spiffe://td/w', [audience], 150)).toBeDefined();
    for (let i = 0; i < 10_000; i++) cache.put('spiffe://td/w', [`flood-${i}`], svid);
    expect(cache.size).toBe(3);
  });

  it('drops the tokens a tainted key signed, and only those', () => {
    const cache = new JwtSvidCache();
    cache.put('spiffe://td/a', ['x'], { token: 'old', issuedAt: 100, expiresAt: 400, keyId: 'k-old' });
    cache.put('spiffe://td/b', ['x'], { token: 'new', issuedAt: 100, expiresAt: 400, keyId: 'k-new' });
    expect(cache.dropSignedBy(new Set(['k-old']))).toBe(1);
    expect(cache.valid('spiffe://td/a', ['x'], 150)).toBeUndefined();
    expect(cache.fresh('spiffe://td/b', ['x'], 150)?.token).toBe('new');
    expect(cache.dropSignedBy(new Set(['k-old']))).toBe(0);
  });

  it('drops each token when it expires, with no further call, soonest expiry first', async () => {
    const cache = new JwtSvidCache();
    const now = Date.now() / 1000;
    const put = (audience: string, ttl: number) =>
      cache.put('spiffe://td/w', [audience], {
        token: audience,
        issuedAt: now,
        expiresAt: now + ttl,
        keyId: 'k1',
      });
    // Entries carry their own TTLs: a token put later may expire sooner than those already held.
    put('hour', 3600);
    put('later', 0.4);
    put('sooner', 0.2);
    expect(cache.size).toBe(3);
    await waitUntil('both short-lived tokens to be swept', () => cache.size === 1, 5000);
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(now + 0.4);
    expect(cache.valid('spiffe://td/w', ['hour'], Date.now() / 1000)?.token).toBe('hour');
    cache.clear();
    expect(cache.size).toBe(0);
  });
});
