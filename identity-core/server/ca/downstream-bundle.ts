import type { JwtAuthority, TrustBundle, X509Authority } from '../../spiffe/trust-bundle.js';
import { x509AuthorityId } from '../../spiffe/trust-bundle.js';

/**
 * A downstream server's bundle, rebuilt from each poll of its upstream's: the upstream's X.509 roots
 * (its own intermediate travels in SVID chains instead), less those revoked here, tainted when tainted
 * upstream or here; and every JWT key the upstream knows plus this server's own. The sequence number
 * grows only when something changed, so agents do not re-sync for nothing.
 */
export function mergeUpstreamBundle(
  local: TrustBundle,
  upstream: TrustBundle,
  ownJwtAuthorities: JwtAuthority[],
  revokedHere: ReadonlySet<string>,
): TrustBundle {
  const taintedHere = new Set(
    local.x509Authorities.filter((a) => a.tainted).map((a) => x509AuthorityId(a.der)),
  );
  const x509Authorities: X509Authority[] = upstream.x509Authorities
    .filter((a) => !revokedHere.has(x509AuthorityId(a.der)))
    .map((a) => ({ der: a.der, tainted: a.tainted || taintedHere.has(x509AuthorityId(a.der)) }));
  const jwtAuthorities: JwtAuthority[] = upstream.jwtAuthorities.map((a) => {
    const own = ownJwtAuthorities.find((o) => o.keyId === a.keyId);
    return own?.tainted ? { ...a, tainted: true } : a;
  });
  for (const own of ownJwtAuthorities)
    if (!jwtAuthorities.some((a) => a.keyId === own.keyId)) jwtAuthorities.push(own);

  const x509Key = (list: X509Authority[]) =>
    list.map((a) => `${a.der.toString('base64')}:${a.tainted}`).join(',');
  const jwtKey = (list: JwtAuthority[]) =>
    list
      .map((a) => `${a.keyId}:${a.tainted}`)
      .sort()
      .join(',');
  if (
    x509Key(x509Authorities) === x509Key(local.x509Authorities) &&
    jwtKey(jwtAuthorities) === jwtKey(local.jwtAuthorities)
  )
    return local;
  return { ...local, x509Authorities, jwtAuthorities, sequenceNumber: local.sequenceNumber + 1 };
}
