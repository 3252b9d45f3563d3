import { X509Certificate as NodeX509Certificate, createPublicKey, type JsonWebKey } from 'node:crypto';
import { certificateKeyIds } from './certificate-key-ids.js';
import { toPem } from './pem.js';

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

export function parseSpiffeBundleJson(json: string, trustDomain: string): TrustBundle {
  let document: { keys?: Jwk[]; spiffe_sequence?: number; spiffe_refresh_hint?: number };
  try {
    document = JSON.parse(json) as typeof document;
  } catch (error) {
    throw new Error(`bundle is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(document.keys)) throw new Error('bundle has no "keys" array');
  const bundle: TrustBundle = {
    trustDomain,
    x509Authorities: [],
    jwtAuthorities: [],
    refreshHint: document.spiffe_refresh_hint ?? 0,
    sequenceNumber: document.spiffe_sequence ?? 0,
  };
  for (const [index, key] of document.keys.entries()) {
    if (key.use === 'x509-svid') {
      if (!Array.isArray(key.x5c) || key.x5c.length !== 1)
        throw new Error(`key ${index}: x509-svid keys need exactly one x5c certificate`);
      bundle.x509Authorities.push({ der: Buffer.from(key.x5c[0]!, 'base64'), tainted: false });
    } else if (key.use === 'jwt-svid') {
      if (!key.kid) throw new Error(`key ${index}: jwt-svid keys need a kid`);
      const { use: _use, kid, ...jwk } = key;
      const spki = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({
        format: 'der',
        type: 'spki',
      });
      bundle.jwtAuthorities.push({ keyId: kid, publicKeySpki: spki, expiresAt: 0, tainted: false });
    }
  }
  return bundle;
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
