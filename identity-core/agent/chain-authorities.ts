import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

/**
 * Key identifiers (lowercase hex) of every authority an SVID chain depends on: the AKI of each
 * certificate and the SKI of each intermediate. A bundle names authorities by these ids, so a cached
 * SVID that chains to a tainted root or intermediate is spotted without re-verifying it.
 */
export function authorityKeyIds(chain: Buffer[]): string[] {
  const ids: string[] = [];
  chain.forEach((der, index) => {
    const cert = new x509.X509Certificate(der);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
    if (aki?.keyId) ids.push(aki.keyId.toLowerCase());
    const ski = index > 0 ? cert.getExtension(x509.SubjectKeyIdentifierExtension) : null;
    if (ski) ids.push(ski.keyId.toLowerCase());
  });
  return ids;
}
