/**
 * x509pop (X.509 proof of possession) node attestation as SPIRE's common x509pop package defines it:
 * the JSON documents the agent and server exchange on the AttestAgent stream (Go's encoding/json, so
 * byte strings are base64), the challenge (a 32-byte nonce), the response (the agent's own nonce and
 * a signature over SHA-256(challenge nonce ‖ response nonce): RSA-PSS, or ECDSA as r and s), and the
 * agent ID's parts (SHA-1 fingerprint of the leaf's DER, serial number in even-length hex).
 * Only node:crypto and the spiffe certificate readers: the agent imports this file.
 */
import {
  constants,
  createHash,
  randomBytes,
  sign,
  verify,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { certificateKeyUsage, KeyUsage } from '../spiffe/certificate-key-ids.js';

export const X509POP = 'x509pop';
const NONCE_LENGTH = 32;

export class X509PopError extends Error {}

export type KeyKind = 'rsa' | 'ecdsa';

export interface Challenge {
  kind: KeyKind;
  nonce: Buffer;
}

export interface ChallengeResponse {
  kind: KeyKind;
  nonce: Buffer;
  /** RSA-PSS signature (kind rsa). */
  signature?: Buffer;
  /** ECDSA signature values, big-endian without leading zeros as Go's big.Int.Bytes (kind ecdsa). */
  r?: Buffer;
  s?: Buffer;
}

function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new X509PopError(`unable to unmarshal ${what}: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new X509PopError(`unable to unmarshal ${what}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** A Go []byte field: base64 text, or null / absent for none. */
function bytesField(object: Record<string, unknown>, key: string, what: string): Buffer | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0)
    throw new X509PopError(`unable to unmarshal ${what}: ${key} is not base64`);
  return Buffer.from(value, 'base64');
}

function objectField(
  object: Record<string, unknown>,
  key: string,
  what: string,
): Record<string, unknown> | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value))
    throw new X509PopError(`unable to unmarshal ${what}: ${key} is not an object`);
  return value as Record<string, unknown>;
}

const b64 = (bytes: Buffer | undefined) => (bytes === undefined ? null : bytes.toString('base64'));

/** The agent's attestation payload: its certificate chain, leaf first. */
export function encodeAttestationData(chain: Buffer[]): Buffer {
  return Buffer.from(JSON.stringify({ certificates: chain.map((der) => der.toString('base64')) }));
}

export function decodeAttestationData(payload: Buffer): Buffer[] {
  const object = jsonObject(payload, 'data');
  const list = object['certificates'];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new X509PopError('unable to unmarshal data: certificates is not a list');
  return list.map((item: unknown, i) => {
    if (typeof item !== 'string')
      throw new X509PopError(`unable to unmarshal data: certificate ${i} is not base64`);
    return bytesField({ certificate: item }, 'certificate', 'data')!;
  });
}

function keyKind(publicKey: KeyObject): KeyKind {
  if (publicKey.asymmetricKeyType === 'rsa') return 'rsa';
  if (publicKey.asymmetricKeyType === 'ec') return 'ecdsa';
  throw new X509PopError(`unsupported public key type ${publicKey.asymmetricKeyType ?? 'unknown'}`);
}

/** A fresh challenge for the holder of `leafDer`, whose key must be meant for signatures. */
export function generateChallenge(leafDer: Buffer): Challenge {
  if (((certificateKeyUsage(leafDer) ?? 0) & KeyUsage.digitalSignature) === 0)
    throw new X509PopError('certificate not intended for digital signature use');
  return { kind: keyKind(new X509Certificate(leafDer).publicKey), nonce: randomBytes(NONCE_LENGTH) };
}

export function encodeChallenge(challenge: Challenge): Buffer {
  const body = { nonce: b64(challenge.nonce) };
  return Buffer.from(
    JSON.stringify({
      rsa_signature: challenge.kind === 'rsa' ? body : null,
      ecdsa_signature: challenge.kind === 'ecdsa' ? body : null,
    }),
  );
}

/** The one challenge a document holds (RSA preferred, as a Go client with an RSA key would read it). */
export function decodeChallenge(bytes: Buffer): Challenge[] {
  const object = jsonObject(bytes, 'challenge');
  const challenges: Challenge[] = [];
  for (const [kind, key] of [
    ['rsa', 'rsa_signature'],
    ['ecdsa', 'ecdsa_signature'],
  ] as const) {
    const part = objectField(object, key, 'challenge');
    if (part) challenges.push({ kind, nonce: bytesField(part, 'nonce', 'challenge') ?? Buffer.alloc(0) });
  }
  return challenges;
}

function combine(challengeNonce: Buffer, responseNonce: Buffer): Buffer {
  if (challengeNonce.length !== NONCE_LENGTH) throw new X509PopError('invalid challenge nonce');
  if (responseNonce.length !== NONCE_LENGTH) throw new X509PopError('invalid response nonce');
  return Buffer.concat([challengeNonce, responseNonce]);
}

/** Field size in bytes of the key's curve: the length of r and of s in IEEE P1363 form. */
function curveBytes(key: KeyObject): number {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'prime256v1') return 32;
  if (curve === 'secp384r1') return 48;
  if (curve === 'secp521r1') return 66;
  throw new X509PopError(`unsupported curve ${curve ?? 'unknown'}`);
}

const stripZeros = (bytes: Buffer) => {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  return bytes.subarray(i);
};

/** The agent's answer to `challenges` with its private key. */
export function calculateResponse(privateKey: KeyObject, challenges: Challenge[]): ChallengeResponse {
  const kind = keyKind(privateKey);
  const challenge = challenges.find((c) => c.kind === kind);
  if (!challenge) throw new X509PopError(`expecting ${kind === 'rsa' ? 'RSA' : 'ECDSA'} challenge`);
  const nonce = randomBytes(NONCE_LENGTH);
  const data = combine(challenge.nonce, nonce);
  if (kind === 'rsa') {
    const signature = sign('sha256', data, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
    });
    return { kind, nonce, signature };
  }
  const size = curveBytes(privateKey);
  const rs = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return { kind, nonce, r: stripZeros(rs.subarray(0, size)), s: stripZeros(rs.subarray(size)) };
}

export function encodeResponse(response: ChallengeResponse): Buffer {
  return Buffer.from(
    JSON.stringify({
      rsa_signature:
        response.kind === 'rsa' ? { nonce: b64(response.nonce), signature: b64(response.signature) } : null,
      ecdsa_signature:
        response.kind === 'ecdsa'
          ? { nonce: b64(response.nonce), r: b64(response.r), s: b64(response.s) }
          : null,
    }),
  );
}

/** Reads a response document, keeping the part that answers a challenge of `kind`. */
export function decodeResponse(bytes: Buffer, kind: KeyKind): ChallengeResponse | undefined {
  const object = jsonObject(bytes, 'challenge response');
  const what = 'challenge response';
  const part = objectField(object, kind === 'rsa' ? 'rsa_signature' : 'ecdsa_signature', what);
  if (!part) return undefined;
  const nonce = bytesField(part, 'nonce', what) ?? Buffer.alloc(0);
  if (kind === 'rsa')
    return { kind, nonce, signature: bytesField(part, 'signature', what) ?? Buffer.alloc(0) };
  return {
    kind,
    nonce,
    r: bytesField(part, 'r', what) ?? Buffer.alloc(0),
    s: bytesField(part, 's', what) ?? Buffer.alloc(0),
  };
}

function leftPad(bytes: Buffer, size: number): Buffer | undefined {
  const value = stripZeros(bytes);
  if (value.length > size) return undefined;
  return Buffer.concat([Buffer.alloc(size - value.length), value]);
}

/** Throws unless `response` proves possession of the private key of `publicKey` for `challenge`. */
export function verifyResponse(
  publicKey: KeyObject,
  challenge: Challenge,
  response: ChallengeResponse | undefined,
): void {
  const kind = keyKind(publicKey);
  const name = kind === 'rsa' ? 'RSA' : 'ECDSA';
  if (challenge.kind !== kind) throw new X509PopError(`expecting ${name} challenge`);
  if (!response || response.kind !== kind) throw new X509PopError(`expecting ${name} response`);
  const data = combine(challenge.nonce, response.nonce);
  if (kind === 'rsa') {
    const ok = verify(
      'sha256',
      data,
      {
        key: publicKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_AUTO,
      },
      response.signature ?? Buffer.alloc(0),
    );
    if (!ok) throw new X509PopError('RSA signature verify failed');
    return;
  }
  const size = curveBytes(publicKey);
  const r = leftPad(response.r ?? Buffer.alloc(0), size);
  const s = leftPad(response.s ?? Buffer.alloc(0), size);
  const ok =
    r !== undefined &&
    s !== undefined &&
    verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
  if (!ok) throw new X509PopError('ECDSA signature verify failed');
}

/** SHA-1 of the certificate's DER, lowercase hex: SPIRE's x509pop fingerprint. */
export function fingerprint(der: Buffer): string {
  return createHash('sha1').update(der).digest('hex');
}

/** The serial number as lowercase hex of even length (a leading 0 added when odd). */
export function serialNumberHex(der: Buffer): string {
  const hex = BigInt(`0x${new X509Certificate(der).serialNumber}`).toString(16);
  return hex.length % 2 === 1 ? `0${hex}` : hex;
}
