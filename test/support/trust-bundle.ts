import type { TrustBundle } from '../../identity-core/spiffe/trust-bundle.js';

/** A bundle of example.org holding `roots` (DER), untainted, with no JWT keys: the authorizer tests' trust. */
export function bundleOfRoots(roots: Buffer[], sequenceNumber = 1): TrustBundle {
  return {
    trustDomain: 'example.org',
    x509Authorities: roots.map((der) => ({ der, tainted: false })),
    jwtAuthorities: [],
    refreshHint: 0,
    sequenceNumber,
  };
}
