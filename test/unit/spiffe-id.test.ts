import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpiffeId, SpiffeIdError } from '../../identity-core/spiffe/spiffe-id.js';

describe('SpiffeId', () => {
  it.each([
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://example.org/workload', 'example.org', '/workload'],
    ['spiffe://a-b_c.d/ns/prod/sa/web.v1', 'a-b_c.d', '/ns/prod/sa/web.v1'],
    ['spiffe://1.2.3.4/x', '1.2.3.4', '/x'],
  ])('parses %s', (text, trustDomain, path) => {
    const id = SpiffeId.parse(text);
    expect(id.trustDomain).toBe(trustDomain);
    expect(id.path).toBe(path);
    expect(id.toString()).toBe(text);
  });

  it.each([
    ['', /empty/],
    ['http://example.org/x', /scheme/],
    ['SPIFFE://example.org/x', /scheme/],
    ['spiffe://', /trust domain is missing/],
    ['spiffe://Example.org/x', /lowercase letters/],
    ['spiffe://exa mple.org', /lowercase letters/],
    ['spiffe://user@example.org/x', /userinfo/],
    ['spiffe://example.org:8080/x', /port/],
    ['spiffe://example.org/x?y=z', /query/],
    ['spiffe://example.org/x#frag', /fragment/],
    ['spiffe://example.org/a%20b', /percent/],
    ['spiffe://example.org/a//b', /empty segments/],
    ['spiffe://example.org/a/./b', /dot segments/],
    ['spiffe://example.org/a/../b', /dot segments/],
    ['spiffe://example.org/a/', /trailing slash/],
    ['spiffe://example.org/a$b', /letters, numbers/],
  ])('rejects %j', (text, reason) => {
    expect(() => SpiffeId.parse(text)).toThrow(SpiffeIdError);
    expect(() => SpiffeId.parse(text)).toThrow(reason);
  });

  it('round-trips every valid ID through toString', () => {
    const td = fc.stringMatching(/^[a-z0-9._-]{1,30}$/);
    const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(td, fc.array(segment, { maxLength: 6 }), (trustDomain, segments) => {
        const id = SpiffeId.fromParts(trustDomain, segments.map((s) => `/${s}`).join(''));
        const again = SpiffeId.parse(id.toString());
        expect(again.trustDomain).toBe(trustDomain);
        expect(again.toString()).toBe(id.toString());
      }),
    );
  });
});
