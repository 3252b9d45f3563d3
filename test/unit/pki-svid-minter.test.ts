import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509SvidMinter } from '../../identity-core/pki/svid-minter.js';
import {
  createSelfSignedCa,
  isSelfSigned,
  signDownstreamCa,
  type CaCertificate,
} from '../../identity-core/pki/x509-ca.js';
import { certificateKeyUsage } from '../../identity-core/spiffe/certificate-key-ids.js';
import { toPem } from '../../identity-core/spiffe/pem.js';
import { verifyX509Svid, X509SvidError } from '../../identity-core/spiffe/x509-svid.js';

const openssl = (() => {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    console.warn('openssl is not installed; skipping the openssl checks of minted SVIDs');
    return false;
  }
})();

describe('X509SvidMinter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-mint-'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = leafKey.publicKey.export({ format: 'der', type: 'spki' });
  let ca: CaCertificate;
  let minter: X509SvidMinter;

  beforeAll(async () => {
    ca = await createSelfSignedCa({ trustDomain: 'example.org', privateKey, ttlSeconds: 3600 });
    minter = new X509SvidMinter({ der: ca.der, privateKey });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('mints a leaf with every X509-SVID extension, backdated 10 s', () => {
    const now = Date.now();
    const svid = minter.mint({
      spiffeId: 'spiffe://example.org/web',
      publicKeySpki: spki,
      ttlSeconds: 600,
      now,
      dnsNames: ['web.local'],
    });
    const cert = new x509.X509Certificate(svid.der);
    expect(svid.notAfter - svid.notBefore).toBe(610);
    expect(cert.notBefore.getTime() / 1000).toBe(Math.floor(now / 1000) - 10);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.items.filter((n) => n.type === 'url').map((n) => n.value)).toEqual([
      'spiffe://example.org/web',
    ]);
    expect(san.names.items.filter((n) => n.type === 'dns').map((n) => n.value)).toEqual(['web.local']);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages & x509.KeyUsageFlags.digitalSignature).toBeTruthy();
    expect(ku.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)).toBe(0);
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.critical).toBe(true);
    expect(bc.ca).toBe(false);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect(eku.usages).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(ca.authorityId);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId).toMatch(/^[0-9a-f]{40}$/);
    expect(cert.subject).toContain('CN=web.local');
    expect(BigInt(`0x${cert.serialNumber}`)).toBe(svid.serial);
  });

  it('caps NotAfter at the CA NotAfter', () => {
    const svid = minter.mint({
      spiffeId: 'spiffe://example.org/long',
      publicKeySpki: spki,
      ttlSeconds: 10 * 24 * 3600,
    });
    expect(svid.notAfter).toBe(ca.notAfter);
  });

  it('gives every SVID a distinct positive serial', () => {
    const serials = new Set(
      Array.from(
        { length: 200 },
        () => minter.mint({ spiffeId: 'spiffe://example.org/s', publicKeySpki: spki, ttlSeconds: 60 }).serial,
      ),
    );
    expect(serials.size).toBe(200);
    for (const serial of serials) expect(serial > 0n).toBe(true);
  });

  it.skipIf(!openssl)('is accepted by openssl verify and shows the URI SAN', () => {
    const svid = minter.mint({
      spiffeId: 'spiffe://example.org/openssl',
      publicKeySpki: spki,
      ttlSeconds: 600,
    });
    writeFileSync(join(dir, 'root.pem'), toPem(ca.der));
    writeFileSync(join(dir, 'leaf.pem'), toPem(svid.der));
    const verified = execFileSync('openssl', [
      'verify',
      '-x509_strict',
      '-CAfile',
      join(dir, 'root.pem'),
      join(dir, 'leaf.pem'),
    ]).toString();
    expect(verified.trim()).toBe(`${join(dir, 'leaf.pem')}: OK`);
    const text = execFileSync('openssl', [
      'x509',
      '-noout',
      '-text',
      '-in',
      join(dir, 'leaf.pem'),
    ]).toString();
    expect(text).toContain('URI:spiffe://example.org/openssl');
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/);
  });

  it('passes X509-SVID validation and fails it against another root, as a CA leaf, or with two URI SANs', async () => {
    const svid = minter.mint({ spiffeId: 'spiffe://example.org/v', publicKeySpki: spki, ttlSeconds: 600 });
    expect(verifyX509Svid([svid.der], [ca.der]).spiffeId.toString()).toBe('spiffe://example.org/v');
    const other = await createSelfSignedCa({
      trustDomain: 'example.org',
      privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      ttlSeconds: 3600,
    });
    expect(() => verifyX509Svid([svid.der], [other.der])).toThrow(/unknown authority/);
    expect(() => verifyX509Svid([ca.der], [ca.der])).toThrow(X509SvidError);
    const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const twoSans = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '02',
      name: 'O=Test',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'spiffe://example.org/a' },
          { type: 'url', value: 'spiffe://example.org/b' },
        ]),
      ],
    });
    expect(() => verifyX509Svid([Buffer.from(twoSans.rawData)], [Buffer.from(twoSans.rawData)])).toThrow(
      /exactly one URI SAN/,
    );
    expect(() => verifyX509Svid([svid.der], [ca.der], (svid.notAfter + 5) * 1000)).toThrow(/expired/);
    expect(new X509Certificate(svid.der).checkIssued(new X509Certificate(ca.der))).toBe(true);
  });

  it('signs downstream CAs that chain to the root, capped at its NotAfter, accepted by openssl', async () => {
    const downKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const intermediate = await signDownstreamCa({
      trustDomain: 'example.org',
      publicKeySpki: downKey.publicKey.export({ format: 'der', type: 'spki' }),
      issuer: { der: ca.der, privateKey },
      parentChainLength: 0,
      ttlSeconds: 10 * 3600,
    });
    expect(intermediate.notAfter).toBe(ca.notAfter);
    const parsed = new x509.X509Certificate(intermediate.der);
    // SPIRE's name for it: the root's subject, organizational unit DOWNSTREAM-1.
    const root = new x509.X509Certificate(ca.der);
    expect(parsed.subject).toBe(root.subject.replace('O=SPIFFE, ', 'O=SPIFFE, OU=DOWNSTREAM-1, '));
    expect(isSelfSigned(ca.der)).toBe(true);
    expect(isSelfSigned(intermediate.der)).toBe(false);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(true);
    expect(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(ca.authorityId);
    const leaf = new X509SvidMinter({ der: intermediate.der, privateKey: downKey.privateKey }).mint({
      spiffeId: 'spiffe://example.org/nested',
      publicKeySpki: spki,
      ttlSeconds: 60,
    });
    expect(verifyX509Svid([leaf.der, intermediate.der], [ca.der]).spiffeId.toString()).toBe(
      'spiffe://example.org/nested',
    );
    expect(() => verifyX509Svid([leaf.der], [ca.der])).toThrow(/unknown authority/);
    writeFileSync(join(dir, 'root.pem'), toPem(ca.der));
    writeFileSync(join(dir, 'mid.pem'), toPem(intermediate.der));
    writeFileSync(join(dir, 'nested.pem'), toPem(leaf.der));
    const out = execFileSync(
      'openssl',
      [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'mid.pem'),
        join(dir, 'nested.pem'),
      ],
      { encoding: 'utf8' },
    );
    expect(out).toContain('OK');

    // The small DER reader sees the same KeyUsage bits as @peculiar/x509.
    for (const der of [leaf.der, intermediate.der, ca.der])
      expect(certificateKeyUsage(der)).toBe(
        new x509.X509Certificate(der).getExtension(x509.KeyUsagesExtension)?.usages,
      );
  });
});
