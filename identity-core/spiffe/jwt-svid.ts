import { createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { SpiffeId } from './spiffe-id.js';
import type { TrustBundle } from './trust-bundle.js';

export class JwtSvidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwtSvidError';
  }
}

/** The JWT-SVID standard's allowed algorithms; anything else (and `none` above all) is refused. */
const ALGORITHMS = ['ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

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

/**
 * Validates a JWT-SVID against a bundle's JWT authorities: signature by the key its `kid` names, an
 * allowed algorithm, `aud` containing the expected audience, `exp` in the future, and `sub` a SPIFFE
 * ID of the bundle's trust domain. A tainted key still validates until it is revoked, as in SPIRE.
 */
export async function validateJwtSvid(
  token: string,
  options: { bundle: TrustBundle; audience: string; now?: number },
): Promise<{ spiffeId: SpiffeId; claims: Record<string, unknown> }> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new JwtSvidError('token is malformed: not a compact JWS');
  }
  if (!header.alg || !ALGORITHMS.includes(header.alg)) {
    throw new JwtSvidError(`unsupported token signature algorithm "${header.alg ?? ''}"`);
  }
  if (!header.kid) throw new JwtSvidError('token header missing key id');
  const authority = options.bundle.jwtAuthorities.find((a) => a.keyId === header.kid);
  if (!authority)
    throw new JwtSvidError(
      `no key found with key id "${header.kid}" in the bundle of "${options.bundle.trustDomain}"`,
    );
  const key = createPublicKey({ key: authority.publicKeySpki, format: 'der', type: 'spki' });
  let payload: Record<string, unknown>;
  try {
    const result = await jwtVerify(token, key, {
      algorithms: ALGORITHMS,
      audience: options.audience,
      requiredClaims: ['sub', 'aud', 'exp'],
      ...(options.now !== undefined ? { currentDate: new Date(options.now) } : {}),
    });
    payload = result.payload as Record<string, unknown>;
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw new JwtSvidError('token has expired');
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      if (error.claim === 'aud')
        throw new JwtSvidError(`expected audience in ${JSON.stringify(options.audience)}`);
      throw new JwtSvidError(`token claim "${error.claim}" is invalid: ${error.reason}`);
    }
    if (error instanceof joseErrors.JWSSignatureVerificationFailed)
      throw new JwtSvidError('token signature is invalid');
    throw new JwtSvidError(`token is invalid: ${(error as Error).message}`);
  }
  let spiffeId: SpiffeId;
  try {
    spiffeId = SpiffeId.parse(String(payload.sub));
  } catch (error) {
    throw new JwtSvidError(`token subject is not a SPIFFE ID: ${(error as Error).message}`);
  }
  if (spiffeId.trustDomain !== options.bundle.trustDomain) {
    throw new JwtSvidError(
      `token subject ${spiffeId} is not in trust domain "${options.bundle.trustDomain}"`,
    );
  }
  return { spiffeId, claims: payload };
}
