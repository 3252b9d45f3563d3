import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { DerError, children, oidToString, readNode } from './der.js';

export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

export interface ParsedCsr {
  /** SubjectPublicKeyInfo DER, copied into the SVID as is. */
  publicKeySpki: Buffer;
  publicKey: KeyObject;
  uriSans: string[];
  dnsSans: string[];
}

const MAX_CSR_BYTES = 8 * 1024;
const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';

const EC_CURVES: Record<string, { crv: string; size: number }> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32 },
  '1.3.132.0.34': { crv: 'P-384', size: 48 },
};

/**
 * Imports a SubjectPublicKeyInfo. For EC keys the point is handed to OpenSSL as a JWK: importing
 * DER goes through OpenSSL 3's decoder framework, which measured ~100 µs a key here against ~64 µs,
 * the largest cost of minting after the signature check itself (see `npm run bench -- mint`).
 */
function importSpki(buf: Buffer, spki: ReturnType<typeof readNode>): KeyObject {
  const [algorithm, bits] = children(buf, spki);
  const ids = algorithm ? children(buf, algorithm) : [];
  const curve =
    ids[1]?.tag === 0x06 ? EC_CURVES[oidToString(buf.subarray(ids[1].contentStart, ids[1].end))] : undefined;
  if (
    curve &&
    bits &&
    bits.tag === 0x03 &&
    bits.end - bits.contentStart === 2 + 2 * curve.size &&
    buf[bits.contentStart + 1] === 0x04
  ) {
    const x = buf.subarray(bits.contentStart + 2, bits.contentStart + 2 + curve.size);
    const y = buf.subarray(bits.contentStart + 2 + curve.size, bits.end);
    return createPublicKey({
      key: { kty: 'EC', crv: curve.crv, x: x.toString('base64url'), y: y.toString('base64url') },
      format: 'jwk',
    });
  }
  return createPublicKey({ key: buf.subarray(spki.start, spki.end), format: 'der', type: 'spki' });
}

function checkKey(key: KeyObject): void {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve !== 'prime256v1' && details.namedCurve !== 'secp384r1') {
      throw new CsrError(`unsupported EC curve ${details.namedCurve ?? 'unknown'} (P-256 or P-384 expected)`);
    }
  } else if (key.asymmetricKeyType === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new CsrError('RSA keys must be at least 2048 bits');
  } else {
    throw new CsrError(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

function sansOf(buf: Buffer, attributes: ReturnType<typeof readNode>, uris: string[], dns: string[]): void {
  for (const attribute of children(buf, attributes)) {
    const [type, values] = children(buf, attribute);
    if (!type || !values || oidToString(buf.subarray(type.contentStart, type.end)) !== EXTENSION_REQUEST)
      continue;
    for (const extensions of children(buf, values)) {
      for (const extension of children(buf, extensions)) {
        const parts = children(buf, extension);
        const id = parts[0];
        const value = parts.at(-1);
        if (!id || !value || oidToString(buf.subarray(id.contentStart, id.end)) !== SUBJECT_ALT_NAME)
          continue;
        const names = readNode(buf, value.contentStart, value.end);
        for (const name of children(buf, names)) {
          const text = buf.toString('latin1', name.contentStart, name.end);
          if (name.tag === 0x86) uris.push(text);
          else if (name.tag === 0x82) dns.push(text);
        }
      }
    }
  }
}

/** Parses a PKCS#10 CSR and verifies its self-signature; throws CsrError with the reason. */
export function parseCsr(der: Buffer | Uint8Array): ParsedCsr {
  const buf = Buffer.isBuffer(der) ? der : Buffer.from(der);
  if (buf.length === 0) throw new CsrError('CSR is empty');
  if (buf.length > MAX_CSR_BYTES) throw new CsrError(`CSR is larger than ${MAX_CSR_BYTES} bytes`);
  try {
    const outer = readNode(buf, 0);
    if (outer.tag !== 0x30 || outer.end !== buf.length)
      throw new CsrError('CSR is not a single DER SEQUENCE');
    const [info, algorithm, signature] = children(buf, outer);
    if (
      !info ||
      !algorithm ||
      !signature ||
      info.tag !== 0x30 ||
      algorithm.tag !== 0x30 ||
      signature.tag !== 0x03
    ) {
      throw new CsrError('CSR structure is invalid');
    }
    const infoParts = children(buf, info);
    const spki = infoParts[2];
    if (!spki || spki.tag !== 0x30) throw new CsrError('CSR has no subject public key');
    const algorithmId = children(buf, algorithm)[0];
    if (!algorithmId || algorithmId.tag !== 0x06) throw new CsrError('CSR signature algorithm is invalid');
    const algorithmOid = oidToString(buf.subarray(algorithmId.contentStart, algorithmId.end));
    const hash = SIGNATURE_HASHES[algorithmOid];
    if (!hash) throw new CsrError(`unsupported CSR signature algorithm ${algorithmOid}`);
    const publicKeySpki = Buffer.from(buf.subarray(spki.start, spki.end));
    let publicKey: KeyObject;
    try {
      publicKey = importSpki(buf, spki);
    } catch {
      throw new CsrError('CSR public key is invalid');
    }
    checkKey(publicKey);
    if (buf[signature.contentStart] !== 0) throw new CsrError('CSR signature has unused bits');
    const signatureBytes = buf.subarray(signature.contentStart + 1, signature.end);
    let valid: boolean;
    try {
      valid = verify(hash, buf.subarray(info.start, info.end), publicKey, signatureBytes);
    } catch {
      valid = false;
    }
    if (!valid) throw new CsrError('CSR signature does not verify with its public key');
    const uriSans: string[] = [];
    const dnsSans: string[] = [];
    const attributes = infoParts[3];
    if (attributes && attributes.tag === 0xa0) sansOf(buf, attributes, uriSans, dnsSans);
    return { publicKeySpki, publicKey, uriSans, dnsSans };
  } catch (error) {
    if (error instanceof CsrError) throw error;
    if (error instanceof DerError) throw new CsrError(`CSR is not valid DER: ${error.message}`);
    throw new CsrError(`CSR could not be parsed: ${(error as Error).message}`);
  }
}
