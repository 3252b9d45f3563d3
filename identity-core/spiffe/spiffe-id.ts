/** SPIFFE IDs as the SPIFFE-ID standard defines them: spiffe://<trust domain><path>. */

export class SpiffeIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpiffeIdError';
  }
}

const MAX_LENGTH = 2048;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

export function parseTrustDomain(name: string): string {
  if (name === '') throw new SpiffeIdError('trust domain is missing');
  if (!TRUST_DOMAIN.test(name)) {
    throw new SpiffeIdError(
      'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
    );
  }
  return name;
}

function checkPath(path: string): void {
  if (path === '') return;
  if (!path.startsWith('/')) throw new SpiffeIdError('path must have a leading slash');
  if (path.endsWith('/')) throw new SpiffeIdError('path cannot have a trailing slash');
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') throw new SpiffeIdError('path cannot contain empty segments');
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
    if (Buffer.byteLength(id) > MAX_LENGTH) throw new SpiffeIdError(`longer than ${MAX_LENGTH} bytes`);
    const scheme = 'spiffe://';
    if (!id.toLowerCase().startsWith(scheme)) throw new SpiffeIdError('scheme is missing or invalid');
    if (!id.startsWith(scheme)) throw new SpiffeIdError('scheme is missing or invalid');
    const rest = id.slice(scheme.length);
    const slash = rest.indexOf('/');
    const authority = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    if (authority.includes('@')) throw new SpiffeIdError('userinfo is not allowed');
    if (authority.includes(':')) throw new SpiffeIdError('port is not allowed');
    if (/[?#]/.test(authority) || /[?#]/.test(path))
      throw new SpiffeIdError('query and fragment are not allowed');
    if (path.includes('%')) throw new SpiffeIdError('percent-encoded characters are not allowed');
    parseTrustDomain(authority);
    checkPath(path);
    return new SpiffeId(authority, path);
  }

  static fromParts(trustDomain: string, path: string): SpiffeId {
    parseTrustDomain(trustDomain);
    checkPath(path);
    const id = new SpiffeId(trustDomain, path);
    if (Buffer.byteLength(id.toString()) > MAX_LENGTH)
      throw new SpiffeIdError(`longer than ${MAX_LENGTH} bytes`);
    return id;
  }

  memberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }

  toString(): string {
    return `spiffe://${this.trustDomain}${this.path}`;
  }
}
