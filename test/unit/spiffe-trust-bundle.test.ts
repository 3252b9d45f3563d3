import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { parsePemCertificates, splitDerCertificates, toPem } from '../../identity-core/spiffe/pem.js';
import {
  parseSpiffeBundleJson,
  toSpiffeBundleJson,
  withJwtAuthority,
  withX509Authority,
  withX509AuthorityTainted,
  withoutX509Authority,
  x509AuthorityId,
  type TrustBundle,
} from '../../identity-core/spiffe/trust-bundle.js';

describe('trust bundles', () => {
  let bundle: TrustBundle;
  let rootA: Buffer;
  let rootB: Buffer;

  beforeAll(async () => {
    const ca = async () =>
      (
        await createSelfSignedCa({
          trustDomain: 'example.org',
          privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
          ttlSeconds: 600,
        })
      ).der;
    rootA = await ca();
    rootB = await ca();
    const empty: TrustBundle = {
      trustDomain: 'example.org',
      x509Authorities: [],
      jwtAuthorities: [],
      refreshHint: 300,
      sequenceNumber: 0,
    };
    const jwtKey = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).export({
      format: 'der',
      type: 'spki',
    });
    bundle = withJwtAuthority(withX509Authority(withX509Authority(empty, rootA), rootB), {
      keyId: 'kid-1',
      publicKeySpki: jwtKey,
      expiresAt: 0,
      tainted: false,
    });
  });

  it('counts every change in the sequence number and names authorities by SKI', () => {
    expect(bundle.sequenceNumber).toBe(3);
    expect(withX509Authority(bundle, rootA)).toBe(bundle);
    const tainted = withX509AuthorityTainted(bundle, x509AuthorityId(rootA));
    expect(tainted.sequenceNumber).toBe(4);
    expect(tainted.x509Authorities.map((a) => a.tainted)).toEqual([true, false]);
    const revoked = withoutX509Authority(tainted, x509AuthorityId(rootA));
    expect(revoked.x509Authorities.map((a) => x509AuthorityId(a.der))).toEqual([x509AuthorityId(rootB)]);
    expect(x509AuthorityId(rootA)).toMatch(/^[0-9a-f]{40}$/);
  });

  it('writes and reads the SPIFFE bundle format', () => {
    const json = toSpiffeBundleJson(bundle);
    const document = JSON.parse(json) as {
      keys: { use: string; kid?: string; x5c?: string[] }[];
      spiffe_sequence: number;
      spiffe_refresh_hint: number;
    };
    expect(document.keys.map((k) => k.use)).toEqual(['x509-svid', 'x509-svid', 'jwt-svid']);
    expect(document.keys[2]!.kid).toBe('kid-1');
    expect(document.spiffe_sequence).toBe(3);
    expect(document.spiffe_refresh_hint).toBe(300);
    const parsed = parseSpiffeBundleJson(json, 'example.org');
    expect(parsed.x509Authorities.map((a) => a.der)).toEqual([rootA, rootB]);
    expect(parsed.jwtAuthorities[0]!.publicKeySpki).toEqual(bundle.jwtAuthorities[0]!.publicKeySpki);
    const withoutKid = JSON.parse(json) as { keys: Record<string, unknown>[] };
    delete withoutKid.keys[2]!.kid;
    expect(() => parseSpiffeBundleJson(JSON.stringify(withoutKid), 'example.org')).toThrow(/key 2: .*"kid"/);
    expect(() => parseSpiffeBundleJson('nope', 'example.org')).toThrow(/not valid JSON/);
  });

  it('round-trips PEM and concatenated DER', () => {
    expect(parsePemCertificates(toPem(rootA) + toPem(rootB))).toEqual([rootA, rootB]);
    expect(splitDerCertificates(Buffer.concat([rootA, rootB]))).toEqual([rootA, rootB]);
  });

  it('refuses text without PEM, certificates with bytes after them, and symmetric keys', () => {
    expect(parsePemCertificates('')).toEqual([]);
    expect(() => parsePemCertificates('not a certificate\n')).toThrow(/no PEM blocks found/);
    expect(() => parsePemCertificates(toPem(Buffer.concat([rootA, Buffer.from([0])])))).toThrow(
      /trailing data/,
    );
    expect(() => splitDerCertificates(Buffer.concat([rootA, Buffer.from([0x30, 0x00])]))).toThrow(/x509/);
    const oct = JSON.stringify({ keys: [{ kty: 'oct', use: 'jwt-svid', kid: 'k', k: 'c2VjcmV0' }] });
    expect(() => parseSpiffeBundleJson(oct, 'example.org')).toThrow(/key 0: symmetric \("oct"\) keys/);
  });
});
