import {
  X509Certificate as NodeX509Certificate,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { certificateKeyIds } from './certificate-key-ids.js';
import { parseCertificateDer, toPem } from './pem.js';

/** A trust domain's bundle: what a peer needs to verify X509-SVIDs and JWT-SVIDs of that domain. */

export interface X509Authority {
  /** DER of a CA certificate. */
  der: Buffer;
  tainted: boolean;
}

export interface JwtAuthority {
  keyId: string;
  /** DER (SubjectPublicKeyInfo) of the public key. */
  publicKeySpki: Buffer;
  /** Unix seconds; 0 means no expiry. */
  expiresAt: number;
  tainted: boolean;
}

export interface TrustBundle {
  trustDomain: string;
  x509Authorities: X509Authority[];
  jwtAuthorities: JwtAuthority[];
  /** Seconds; 0 means unset. */
  refreshHint: number;
  /** Grows by one on every change. */
  sequenceNumber: number;
}

const authorityIds = new Map<string, string>();

/**
 * The id SPIRE's LocalAuthority API gives an X.509 authority: the lowercase hex of its certificate's
 * SubjectKeyIdentifier. Memoized: bundles are re-read on every sync and parsing is not free.
 */
export function x509AuthorityId(der: Buffer): string {
  const key = der.toString('base64');
  let id = authorityIds.get(key);
  if (id === undefined) {
    id = certificateKeyIds(der).subjectKeyId;
    if (authorityIds.size > 1000) authorityIds.clear();
    authorityIds.set(key, id);
  }
  return id;
}

export function x509AuthoritiesPem(bundle: TrustBundle): string {
  return bundle.x509Authorities.map((a) => toPem(a.der)).join('');
}

interface Jwk {
  use?: string;
  kid?: string;
  x5c?: string[];
  [key: string]: unknown;
}

/** Key members in the order go-jose writes them, so output compares line for line with spire-server's. */
function jwk(use: string, key: JsonWebKey, extra: { kid?: string; x5c?: string[] }): Jwk {
  const ordered: Jwk = { use, kty: key.kty };
  if (extra.kid !== undefined) ordered.kid = extra.kid;
  for (const member of ['crv', 'x', 'y', 'n', 'e'] as const)
    if (key[member] !== undefined) ordered[member] = key[member];
  if (extra.x5c) ordered.x5c = extra.x5c;
  return ordered;
}

/** The SPIFFE bundle format: a JWKS whose keys say `use: x509-svid` (with x5c) or `use: jwt-svid` (with kid), indented by four spaces. */
export function toSpiffeBundleJson(bundle: TrustBundle): string {
  const keys: Jwk[] = [
    ...bundle.x509Authorities.map((authority) =>
      jwk('x509-svid', new NodeX509Certificate(authority.der).publicKey.export({ format: 'jwk' }), {
        x5c: [authority.der.toString('base64')],
      }),
    ),
    ...bundle.jwtAuthorities.map((authority) =>
      jwk(
        'jwt-svid',
        createPublicKey({ key: authority.publicKeySpki, format: 'der', type: 'spki' }).export({
          format: 'jwk',
        }),
        { kid: authority.keyId },
      ),
    ),
  ];
  const document: Record<string, unknown> = { keys };
  if (bundle.sequenceNumber) document.spiffe_sequence = bundle.sequenceNumber;
  if (bundle.refreshHint) document.spiffe_refresh_hint = bundle.refreshHint;
  return JSON.stringify(document, null, 4);
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const CURVE_SIZES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function text(key: Record<string, unknown>, member: string): string {
  const value = key[member];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new Error(`"${member}" is not a string`);
  return value;
}

/** A base64url member's bytes (empty when absent), refusing padding and foreign characters. */
function bytes(key: Record<string, unknown>, member: string): Buffer {
  const value = text(key, member);
  if (!BASE64URL.test(value)) throw new Error(`"${member}" is not base64url`);
  return Buffer.from(value, 'base64url');
}

function x5c(key: Record<string, unknown>): Buffer[] {
  const value = key.x5c;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error('"x5c" is not a list');
  return value.map((entry, index) => {
    if (typeof entry !== 'string' || entry.length % 4 !== 0 || !BASE64.test(entry))
      throw new Error(`x5c certificate ${index} is not base64`);
    const der = Buffer.from(entry, 'base64');
    try {
      parseCertificateDer(der);
    } catch (error) {
      throw new Error(`x5c certificate ${index} is not a certificate: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return der;
  });
}

function publicKey(jwk: JsonWebKey): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (error) {
    throw new Error(`invalid ${jwk.kty} key: ${(error as Error).message}`, { cause: error });
  }
}

/** The public key of a JWK as go-jose reads one (a private key's public half included), checked against its x5c. */
function jwkKey(key: Record<string, unknown>): {
  spki: Buffer;
  certificates: Buffer[];
  keyId: string;
  use: string;
} {
  const keyId = text(key, 'kid');
  const use = text(key, 'use');
  const kty = text(key, 'kty');
  const certificates = x5c(key);
  let jwk: JsonWebKey;
  switch (kty) {
    case 'EC': {
      const crv = text(key, 'crv');
      const size = CURVE_SIZES[crv];
      if (size === undefined) throw new Error(`unsupported elliptic curve "${crv}"`);
      if (!key.x || !key.y) throw new Error('EC key is missing x or y');
      if (bytes(key, 'x').length !== size || bytes(key, 'y').length !== size)
        throw new Error(`EC key coordinates are not ${size} bytes long`);
      jwk = { kty, crv, x: text(key, 'x'), y: text(key, 'y') };
      break;
    }
    case 'RSA':
      if (!key.n || !key.e) throw new Error('RSA key is missing n or e');
      bytes(key, 'n');
      bytes(key, 'e');
      jwk = { kty, n: text(key, 'n'), e: text(key, 'e') };
      break;
    case 'OKP':
      if (text(key, 'crv') !== 'Ed25519' || !key.x)
        throw new Error(`unsupported OKP curve "${text(key, 'crv')}"`);
      bytes(key, 'x');
      jwk = { kty, crv: 'Ed25519', x: text(key, 'x') };
      break;
    case 'oct':
      throw new Error(
        'symmetric ("oct") keys cannot be SPIFFE authorities: JWT-SVIDs are signed with public-key algorithms only',
      );
    default:
      throw new Error(`unknown key type "${kty}"`);
  }
  const spki = publicKey(jwk).export({ format: 'der', type: 'spki' });
  const first = certificates[0];
  if (first && !new NodeX509Certificate(first).publicKey.export({ format: 'der', type: 'spki' }).equals(spki))
    throw new Error('the public keys of the key and of its x5c certificate do not match');
  return { spki, certificates, keyId, use };
}

function parseDocument(json: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch (error) {
    throw new Error(`bundle is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (document === null) return {};
  if (!isObject(document)) throw new Error('bundle is not a JSON object');
  return document;
}

function keyList(document: Record<string, unknown>): unknown[] {
  const keys = document.keys;
  if (keys === undefined || keys === null) return [];
  if (!Array.isArray(keys)) throw new Error('bundle "keys" is not a list');
  return keys;
}

function integerMember(document: Record<string, unknown>, member: string, minimum: number): number {
  const value = document[member];
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum)
    throw new Error(`bundle "${member}" must be an integer${minimum === 0 ? ' of at least 0' : ''}`);
  return value;
}

/** Every key of a JWKS, read; `key N: …` names the one that is not a valid key. */
function readKeys(document: Record<string, unknown>): ReturnType<typeof jwkKey>[] {
  return keyList(document).map((key, index) => {
    try {
      if (!isObject(key)) throw new Error('not a JSON object');
      return jwkKey(key);
    } catch (error) {
      throw new Error(`key ${index}: ${(error as Error).message}`, { cause: error });
    }
  });
}

function withKey(authorities: JwtAuthority[], keyId: string, spki: Buffer, index: number): JwtAuthority[] {
  if (keyId === '') throw new Error(`key ${index}: JWT authorities need a "kid"`);
  const authority = { keyId, publicKeySpki: spki, expiresAt: 0, tainted: false };
  return [...authorities.filter((a) => a.keyId !== keyId), authority];
}

/**
 * The SPIFFE bundle format (SPIFFE Trust Domain and Bundle, section 4): keys with `use: x509-svid`
 * carry exactly one CA certificate in x5c, keys with `use: jwt-svid` a kid; keys of any other use are
 * read (and so must be valid) but not used. At least one key; a later key with the same kid wins.
 */
export function parseSpiffeBundleJson(json: string, trustDomain: string): TrustBundle {
  const document = parseDocument(json);
  const bundle: TrustBundle = {
    trustDomain,
    x509Authorities: [],
    jwtAuthorities: [],
    refreshHint: integerMember(document, 'spiffe_refresh_hint', Number.MIN_SAFE_INTEGER),
    sequenceNumber: integerMember(document, 'spiffe_sequence', 0),
  };
  const keys = readKeys(document);
  if (keys.length === 0) throw new Error('bundle has no authorities');
  for (const [index, key] of keys.entries()) {
    if (key.use === 'x509-svid') {
      if (key.certificates.length !== 1)
        throw new Error(
          `key ${index}: x509-svid keys need exactly one x5c certificate, has ${key.certificates.length}`,
        );
      const der = key.certificates[0]!;
      if (!bundle.x509Authorities.some((a) => a.der.equals(der)))
        bundle.x509Authorities.push({ der, tainted: false });
    } else if (key.use === 'jwt-svid') {
      bundle.jwtAuthorities = withKey(bundle.jwtAuthorities, key.keyId, key.spki, index);
    }
  }
  return bundle;
}

/**
 * A JWKS of JWT authorities, as the Workload API's FetchJWTBundles carries them: every key is one,
 * whatever its `use`, and needs a kid; no keys at all is an empty bundle.
 */
export function parseJwtBundleJson(json: string, trustDomain: string): TrustBundle {
  const document = parseDocument(json);
  let jwtAuthorities: JwtAuthority[] = [];
  for (const [index, key] of readKeys(document).entries())
    jwtAuthorities = withKey(jwtAuthorities, key.keyId, key.spki, index);
  return { trustDomain, x509Authorities: [], jwtAuthorities, refreshHint: 0, sequenceNumber: 0 };
}

function next(bundle: TrustBundle, change: Partial<TrustBundle>): TrustBundle {
  return { ...bundle, ...change, sequenceNumber: bundle.sequenceNumber + 1 };
}

export function withX509Authority(bundle: TrustBundle, der: Buffer): TrustBundle {
  if (bundle.x509Authorities.some((a) => a.der.equals(der))) return bundle;
  return next(bundle, { x509Authorities: [...bundle.x509Authorities, { der, tainted: false }] });
}

export function withX509AuthorityTainted(bundle: TrustBundle, authorityId: string): TrustBundle {
  return next(bundle, {
    x509Authorities: bundle.x509Authorities.map((a) =>
      x509AuthorityId(a.der) === authorityId ? { ...a, tainted: true } : a,
    ),
  });
}

export function withoutX509Authority(bundle: TrustBundle, authorityId: string): TrustBundle {
  return next(bundle, {
    x509Authorities: bundle.x509Authorities.filter((a) => x509AuthorityId(a.der) !== authorityId),
  });
}

export function withJwtAuthority(bundle: TrustBundle, authority: JwtAuthority): TrustBundle {
  if (bundle.jwtAuthorities.some((a) => a.keyId === authority.keyId)) return bundle;
  return next(bundle, { jwtAuthorities: [...bundle.jwtAuthorities, authority] });
}

export function withJwtAuthorityTainted(bundle: TrustBundle, keyId: string): TrustBundle {
  return next(bundle, {
    jwtAuthorities: bundle.jwtAuthorities.map((a) => (a.keyId === keyId ? { ...a, tainted: true } : a)),
  });
}

export function withoutJwtAuthority(bundle: TrustBundle, keyId: string): TrustBundle {
  return next(bundle, { jwtAuthorities: bundle.jwtAuthorities.filter((a) => a.keyId !== keyId) });
}
