import { certificateKeyIds } from '../spiffe/certificate-key-ids.js';

/**
 * Key identifiers (lowercase hex) of every authority an SVID chain depends on: the AKI of each
 * certificate and the SKI of each intermediate. A bundle names authorities by these ids, so a cached
 * SVID that chains to a tainted root or intermediate is spotted without re-verifying it.
 */
export function authorityKeyIds(chain: Buffer[]): string[] {
  const ids: string[] = [];
  chain.forEach((der, index) => {
    const { subjectKeyId, authorityKeyId } = certificateKeyIds(der);
    if (authorityKeyId) ids.push(authorityKeyId);
    if (index > 0 && subjectKeyId) ids.push(subjectKeyId);
  });
  return ids;
}
