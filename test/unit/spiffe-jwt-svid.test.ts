import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { JwtSvidError, mintJwtSvid, validateJwtSvid } from '../../identity-core/spiffe/jwt-svid.js';
import type { TrustBundle } from '../../identity-core/spiffe/trust-bundle.js';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const bundle: TrustBundle = {
  trustDomain: 'example.org',
  x509Authorities: [],
  jwtAuthorities: [
    {
      keyId: 'key-1',
      publicKeySpki: createPublicKey(privateKey).export({ format: 'der', type: 'spki' }),
      expiresAt: 0,
      tainted: false,
    },
  ],
  refreshHint: 0,
  sequenceNumber: 1,
};
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

function handMade(header: object, claims: object): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

describe('JWT-SVIDs', () => {
  it('mints and validates a token for the right audience', async () => {
    const minted = await mintJwtSvid({
      spiffeId: 'spiffe://example.org/web',
      audience: ['db'],
      ttlSeconds: 300,
      privateKey,
      keyId: 'key-1',
    });
    expect(minted.expiresAt - minted.issuedAt).toBe(300);
    const { spiffeId, claims } = await validateJwtSvid(minted.token, { bundle, audience: 'db' });
    expect(spiffeId.toString()).toBe('spiffe://example.org/web');
    expect(claims.aud).toEqual(['db']);
  });

  it('refuses the wrong audience', async () => {
    const { token } = await mintJwtSvid({
      spiffeId: 'spiffe://example.org/web',
      audience: ['db'],
      ttlSeconds: 300,
      privateKey,
      keyId: 'key-1',
    });
    await expect(validateJwtSvid(token, { bundle, audience: 'cache' })).rejects.toThrow(/audience/);
  });

  it('refuses an expired token', async () => {
    const { token } = await mintJwtSvid({
      spiffeId: 'spiffe://example.org/web',
      audience: ['db'],
      ttlSeconds: 60,
      privateKey,
      keyId: 'key-1',
      now: Date.now() - 3_600_000,
    });
    await expect(validateJwtSvid(token, { bundle, audience: 'db' })).rejects.toThrow(/expired/);
  });

  it.each([
    [
      'alg none',
      handMade({ alg: 'none', kid: 'key-1' }, { sub: 'spiffe://example.org/x', aud: 'a', exp: 9e9 }),
      /algorithm "none"/,
    ],
    [
      'HS256',
      handMade({ alg: 'HS256', kid: 'key-1' }, { sub: 'spiffe://example.org/x', aud: 'a', exp: 9e9 }),
      /algorithm "HS256"/,
    ],
    [
      'a missing kid',
      handMade({ alg: 'ES256' }, { sub: 'spiffe://example.org/x', aud: 'a', exp: 9e9 }),
      /key id/,
    ],
    [
      'a foreign kid',
      handMade({ alg: 'ES256', kid: 'other' }, { sub: 'spiffe://example.org/x', aud: 'a', exp: 9e9 }),
      /no key found/,
    ],
    [
      'a missing exp',
      handMade({ alg: 'ES256', kid: 'key-1' }, { sub: 'spiffe://example.org/x', aud: 'a' }),
      /exp/,
    ],
    [
      'a subject that is not a SPIFFE ID',
      handMade({ alg: 'ES256', kid: 'key-1' }, { sub: 'bob', aud: 'a', exp: 9e9 }),
      /SPIFFE ID/,
    ],
    [
      'a subject of another trust domain',
      handMade({ alg: 'ES256', kid: 'key-1' }, { sub: 'spiffe://evil.org/x', aud: 'a', exp: 9e9 }),
      /trust domain/,
    ],
    ['garbage', 'not.a.jwt', JwtSvidError],
  ])('refuses %s', async (_name, token, reason) => {
    await expect(validateJwtSvid(token, { bundle, audience: 'a' })).rejects.toThrow(reason);
  });

  it('accepts a well-formed hand-made token, so the refusals above are about what they change', async () => {
    const token = handMade(
      { alg: 'ES256', kid: 'key-1', typ: 'JWT' },
      { sub: 'spiffe://example.org/x', aud: 'a', exp: 9e9 },
    );
    expect((await validateJwtSvid(token, { bundle, audience: 'a' })).spiffeId.toString()).toBe(
      'spiffe://example.org/x',
    );
  });
});
