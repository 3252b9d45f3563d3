/**
 * SPIFFE IDs as the SPIFFE-ID standard defines them: spiffe://<trust domain><path>. The grammar is the
 * reference implementation's (go-spiffe): no length limit here, since the standard only says IDs
 * should be short and the reference accepts long ones; whatever stores IDs bounds them itself.
 */

export class SpiffeIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpiffeIdError';
  }
}

const SCHEME = 'spiffe://';
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

const BAD_TRUST_DOMAIN_CHAR =
  'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';

function checkTrustDomainName(name: string): void {
  if (name === '') throw new SpiffeIdError('trust domain is missing');
  if (!TRUST_DOMAIN.test(name)) throw new SpiffeIdError(BAD_TRUST_DOMAIN_CHAR);
}

/** A trust domain name, or the trust domain of a SPIFFE ID given instead (anything with ":/"), as SPIRE's config accepts. */
export function parseTrustDomain(nameOrId: string): string {
  if (nameOrId.includes(':/')) return SpiffeId.parse(nameOrId).trustDomain;
  checkTrustDomainName(nameOrId);
  return nameOrId;
}

function checkPath(path: string): void {
  if (path === '') return;
  if (!path.startsWith('/')) throw new SpiffeIdError('path must have a leading slash');
  const segments = path.slice(1).split('/');
  for (const [index, segment] of segments.entries()) {
    if (segment === '') {
      throw new SpiffeIdError(
        index === segments.length - 1
          ? 'path cannot have a trailing slash'
          : 'path cannot contain empty segments',
      );
    }
    if (segment === '.' || segment === '..') throw new SpiffeIdError('path cannot contain dot segments');
    if (!SEGMENT.test(segment)) {
      throw new SpiffeIdError(
        'path segment characters are limited to letters, numbers, dots, dashes, and underscores',
      );
    }
  }
}

export class SpiffeId {
  private constructor(
    readonly trustDomain: string,
    readonly path: string,
  ) {}

  static parse(id: string): SpiffeId {
    if (id === '') throw new SpiffeIdError('cannot be empty');
    if (!id.startsWith(SCHEME)) throw new SpiffeIdError('scheme is missing or invalid');
    const rest = id.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    const authority = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    // Named refusals for URI parts the standard forbids; the character rules below refuse them anyway.
    if (authority.includes('@')) throw new SpiffeIdError('userinfo is not allowed');
    if (authority.includes(':')) throw new SpiffeIdError('port is not allowed');
    if (/[?#]/.test(authority) || /[?#]/.test(path))
      throw new SpiffeIdError('query and fragment are not allowed');
    if (id.includes('%')) throw new SpiffeIdError('percent-encoded characters are not allowed');
    checkTrustDomainName(authority);
    checkPath(path);
    return new SpiffeId(authority, path);
  }

  static fromParts(trustDomain: string, path: string): SpiffeId {
    checkTrustDomainName(trustDomain);
    checkPath(path);
    return new SpiffeId(trustDomain, path);
  }

  memberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }

  toString(): string {
    return `spiffe://${this.trustDomain}${this.path}`;
  }
}
