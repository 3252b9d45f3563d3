import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { CsrError, nativeP256Verify, parseCsr } from '../../identity-core/pki/csr.js';
import { newKeyAndCsr } from '../../identity-core/agent/workload-key.js';

async function csrFor(
  algorithm: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams,
  signing: object,
  sans: x509.JsonGeneralName[] = [],
): Promise<Buffer> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: signing as webcrypto.Algorithm,
    ...(sans.length ? { extensions: [new x509.SubjectAlternativeNameExtension(sans)] } : {}),
  });
  return Buffer.from(csr.rawData);
}

describe('parseCsr', () => {
  it('accepts an EC P-256 CSR and returns its key and SANs', async () => {
    const csr = await csrFor({ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }, [
      { type: 'url', value: 'spiffe://example.org/a' },
      { type: 'dns', value: 'a.example.org' },
    ]);
    const parsed = parseCsr(csr);
    expect(parsed.uriSans).toEqual(['spiffe://example.org/a']);
    expect(parsed.dnsSans).toEqual(['a.example.org']);
    expect(parsed.keyType).toBe('ec-p256');
  });

  it('accepts P-384 and RSA 2048 CSRs', async () => {
    expect(
      parseCsr(await csrFor({ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' }))
        .keyType,
    ).toBe('ec-p384');
    const rsa = {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    };
    expect(parseCsr(await csrFor(rsa, rsa)).keyType).toBe('rsa');
  });

  it('rejects a CSR whose signature was made by another key', async () => {
    const { csr } = await newKeyAndCsr();
    const tampered = Buffer.from(csr);
    tampered[tampered.length - 3]! ^= 0x01;
    expect(() => parseCsr(tampered)).toThrow(/signature/);
  });

  it.each([
    ['empty input', Buffer.alloc(0), /empty/],
    ['garbage', randomBytes(100), CsrError],
    ['an oversized CSR', Buffer.alloc(9000, 0x30), /larger than/],
  ])('rejects %s', (_name, input, reason) => {
    expect(() => parseCsr(input)).toThrow(reason);
  });

  it('rejects truncated DER at every length', async () => {
    const { csr } = await newKeyAndCsr();
    for (let length = 1; length < csr.length; length += 7)
      expect(() => parseCsr(csr.subarray(0, length))).toThrow(CsrError);
  });

  it('rejects an RSA key shorter than 2048 bits', async () => {
    const rsa = {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 1024,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    };
    await expect(csrFor(rsa, rsa).then(parseCsr)).rejects.toThrow(/at least 2048 bits/);
  });

  it('checks P-256 CSRs on the native path, which refuses what node:crypto refuses', async () => {
    // npm run build compiles the addon; the mint figure depends on it.
    expect(nativeP256Verify).toBe(true);
    const { csr } = await newKeyAndCsr();
    expect(parseCsr(csr).keyType).toBe('ec-p256');
    // A point moved off the curve: flip a byte of Y inside the SubjectPublicKeyInfo.
    const spkiAt = csr.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04]));
    expect(spkiAt).toBeGreaterThan(0);
    const offCurve = Buffer.from(csr);
    offCurve[spkiAt + 4 + 63]! ^= 0x01;
    expect(() => parseCsr(offCurve)).toThrow(CsrError);
  });
});
