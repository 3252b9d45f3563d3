import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { loadAddon } from '../native/addons.js';
import { DerError, children, oidToString, readNode } from '../spiffe/der.js';

export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

export type CsrKeyType = 'ec-p256' | 'ec-p384' | 'rsa';

export interface ParsedCsr {
  /** SubjectPublicKeyInfo DER, copied into the SVID as is. */
  publicKeySpki: Buffer;
  keyType: CsrKeyType;
  uriSans: string[];
  dnsSans: string[];
}

interface EcdsaP256Addon {
  verify(point: Buffer, data: Buffer, signature: Buffer): boolean;
}

/**
 * The native P-256 check (identity-core/native/ecdsa-p256.c) when it is built: 2.5× faster than a
 * KeyObject import plus crypto.verify, which made CSR checks two thirds of minting time.
 */
const ecdsaP256 = loadAddon<EcdsaP256Addon>('ecdsa-p256');

/** Whether CSR checks take the native P-256 path (reported by the mint benchmark). */
export const nativeP256Verify = ecdsaP256 !== undefined;

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

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

const EC_CURVES: Record<string, { crv: string; size: number; keyType: CsrKeyType }> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32, keyType: 'ec-p256' },
  '1.3.132.0.34': { crv: 'P-384', size: 48, keyType: 'ec-p384' },
};

interface SpkiInfo {
  /** The uncompressed EC point, when the key is EC on a supported curve. */
  point?: Buffer;
  curve?: (typeof EC_CURVES)[string];
}

function ecPointOf(buf: Buffer, spki: ReturnType<typeof readNode>): SpkiInfo {
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
    return { point: buf.subarray(bits.contentStart + 1, bits.end), curve };
  }
  return {};
}

/**
 * Imports a SubjectPublicKeyInfo for node:crypto. EC points go in as a JWK: importing DER goes through
 * OpenSSL 3's decoder framework, which measured ~100 µs a key here against ~64 µs.
 */
function importSpki(buf: Buffer, spki: ReturnType<typeof readNode>, ec: SpkiInfo): KeyObject {
  if (ec.point && ec.curve) {
    const size = ec.curve.size;
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: ec.curve.crv,
        x: ec.point.subarray(1, 1 + size).toString('base64url'),
        y: ec.point.subarray(1 + size).toString('base64url'),
      },
      format: 'jwk',
    });
  }
  return createPublicKey({ key: buf.subarray(spki.start, spki.end), format: 'der', type: 'spki' });
}

function checkKey(key: KeyObject): CsrKeyType {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
    throw new CsrError(`unsupported EC curve ${details.namedCurve ?? 'unknown'} (P-256 or P-384 expected)`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new CsrError('RSA keys must be at least 2048 bits');
    return 'rsa';
  }
  throw new CsrError(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
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
    if (buf[signature.contentStart] !== 0) throw new CsrError('CSR signature has unused bits');
    const signatureBytes = buf.subarray(signature.contentStart + 1, signature.end);
    const signed = buf.subarray(info.start, info.end);
    const ec = ecPointOf(buf, spki);
    let keyType: CsrKeyType;
    let valid: boolean;
    if (ecdsaP256 && ec.curve?.keyType === 'ec-p256' && algorithmOid === ECDSA_WITH_SHA256) {
      keyType = 'ec-p256';
      // The native check also refuses a point that is not on the curve.
      valid = ecdsaP256.verify(ec.point!, signed, signatureBytes);
    } else {
      let publicKey: KeyObject;
      try {
        publicKey = importSpki(buf, spki, ec);
      } catch {
        throw new CsrError('CSR public key is invalid');
      }
      keyType = checkKey(publicKey);
      try {
        valid = verify(hash, signed, publicKey, signatureBytes);
      } catch {
        valid = false;
      }
    }
    if (!valid) throw new CsrError('CSR signature does not verify with its public key');
    const uriSans: string[] = [];
    const dnsSans: string[] = [];
    const attributes = infoParts[3];
    if (attributes && attributes.tag === 0xa0) sansOf(buf, attributes, uriSans, dnsSans);
    return { publicKeySpki, keyType, uriSans, dnsSans };
  } catch (error) {
    if (error instanceof CsrError) throw error;
    if (error instanceof DerError) throw new CsrError(`CSR is not valid DER: ${error.message}`);
    throw new CsrError(`CSR could not be parsed: ${(error as Error).message}`);
  }
}
