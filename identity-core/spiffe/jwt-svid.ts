import { createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, compactVerify, errors as joseErrors } from 'jose';
import { SpiffeId } from './spiffe-id.js';
import type { TrustBundle } from './trust-bundle.js';

export class JwtSvidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwtSvidError';
  }
}

/** The JWT-SVID standard's allowed algorithms; anything else (and `none` above all) is refused. */
const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

export interface MintedJwtSvid {
  token: string;
  issuedAt: number;
  expiresAt: number;
}

export async function mintJwtSvid(options: {
  spiffeId: string;
  audience: string[];
  ttlSeconds: number;
  privateKey: KeyObject;
  keyId: string;
  now?: number;
}): Promise<MintedJwtSvid> {
  if (options.audience.length === 0) throw new JwtSvidError('at least one audience is required');
  const issuedAt = Math.floor((options.now ?? Date.now()) / 1000);
  const expiresAt = issuedAt + options.ttlSeconds;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: options.keyId, typ: 'JWT' })
    .setSubject(options.spiffeId)
    .setAudience(options.audience)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .sign(options.privateKey);
  return { token, issuedAt, expiresAt };
}

/** The clock skew allowed on `exp`, `nbf` and `iat`, as go-spiffe (through go-jose) allows it. */
const LEEWAY_MS = 60_000;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeJson(part: string): unknown {
  if (!BASE64URL.test(part)) throw new Error('not base64url');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A NumericDate claim as whole Unix seconds (fractions dropped), undefined when absent or null. */
function numericDate(claims: Record<string, unknown>, name: string): number | undefined {
  const value = claims[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number') throw new JwtSvidError(`token claim "${name}" is not a number`);
  return Math.trunc(value);
}

function stringClaim(claims: Record<string, unknown>, name: string): string {
  const value = claims[name];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new JwtSvidError(`token claim "${name}" is not a string`);
  return value;
}

function audienceClaim(claims: Record<string, unknown>): string[] {
  const value = claims.aud;
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((one) => typeof one === 'string')) return value as string[];
  throw new JwtSvidError('token claim "aud" is not a string or a list of strings');
}

/**
 * Validates a JWT-SVID against a bundle's JWT authorities as the JWT-SVID standard and go-spiffe do:
 * a compact JWS with an allowed algorithm, signed by the key its `kid` names; `sub` a SPIFFE ID of
 * the bundle's trust domain; `aud` holding one of the expected audiences (none expected: not checked);
 * `exp` present; `exp`, `nbf` and `iat` checked with one minute of clock skew. A tainted key still
 * validates until it is revoked, as in SPIRE.
 */
export async function validateJwtSvid(
  token: string,
  options: { bundle: TrustBundle; audience: string | string[]; now?: number },
): Promise<{ spiffeId: SpiffeId; claims: Record<string, unknown>; expiresAt: number }> {
  const parts = token.split('.');
  let header: unknown;
  let payload: unknown;
  try {
    if (parts.length !== 3 || !BASE64URL.test(parts[2]!)) throw new Error('not a compact JWS');
    header = decodeJson(parts[0]!);
    payload = decodeJson(parts[1]!);
  } catch {
    throw new JwtSvidError('token is malformed: not a compact JWS');
  }
  if (!isObject(header)) throw new JwtSvidError('token is malformed: header is not a JSON object');
  const algorithm = typeof header.alg === 'string' ? header.alg : '';
  if (!ALGORITHMS.includes(algorithm))
    throw new JwtSvidError(`unsupported token signature algorithm "${algorithm}"`);
  if (header.kid !== undefined && typeof header.kid !== 'string')
    throw new JwtSvidError('token header key id is not a string');
  if (!isObject(payload)) throw new JwtSvidError('token claims are not a JSON object');
  const claims = payload;
  const subject = stringClaim(claims, 'sub');
  stringClaim(claims, 'iss');
  stringClaim(claims, 'jti');
  const audience = audienceClaim(claims);
  const expiresAt = numericDate(claims, 'exp');
  const notBefore = numericDate(claims, 'nbf');
  const issuedAt = numericDate(claims, 'iat');
  if (subject === '') throw new JwtSvidError('token missing subject claim');
  if (expiresAt === undefined) throw new JwtSvidError('token missing exp claim');
  let spiffeId: SpiffeId;
  try {
    spiffeId = SpiffeId.parse(subject);
  } catch (error) {
    throw new JwtSvidError(`token subject is not a SPIFFE ID: ${(error as Error).message}`);
  }

  const keyId = header.kid ?? '';
  if (keyId === '') throw new JwtSvidError('token header missing key id');
  if (spiffeId.trustDomain !== options.bundle.trustDomain) {
    throw new JwtSvidError(
      `token subject ${spiffeId} is not in trust domain "${options.bundle.trustDomain}"`,
    );
  }
  const authority = options.bundle.jwtAuthorities.find((a) => a.keyId === keyId);
  if (!authority)
    throw new JwtSvidError(
      `no key found with key id "${keyId}" in the bundle of "${options.bundle.trustDomain}"`,
    );
  const key = createPublicKey({ key: authority.publicKeySpki, format: 'der', type: 'spki' });
  try {
    await compactVerify(token, key, { algorithms: [algorithm] });
  } catch (error) {
    if (error instanceof joseErrors.JWSSignatureVerificationFailed)
      throw new JwtSvidError('token signature is invalid');
    throw new JwtSvidError(
      `token signature cannot be checked with key "${keyId}": ${(error as Error).message}`,
    );
  }

  const expected = typeof options.audience === 'string' ? [options.audience] : options.audience;
  if (expected.length > 0 && !expected.some((one) => audience.includes(one)))
    throw new JwtSvidError(`expected audience in ${JSON.stringify(expected)}`);
  const now = options.now ?? Date.now();
  if (notBefore !== undefined && now + LEEWAY_MS < notBefore * 1000)
    throw new JwtSvidError('token is not valid yet');
  if (now - LEEWAY_MS > expiresAt * 1000) throw new JwtSvidError('token has expired');
  if (issuedAt !== undefined && now + LEEWAY_MS < issuedAt * 1000)
    throw new JwtSvidError('token was issued in the future');
  return { spiffeId, claims, expiresAt };
}
