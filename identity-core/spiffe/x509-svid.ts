import type { X509Certificate } from 'node:crypto';
import { findPath, isCa, parseCertificates, timeProblem, type Certificate } from './certificate-path.js';
import { KeyUsage } from './certificate-key-ids.js';
import { SpiffeId } from './spiffe-id.js';

export class X509SvidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'X509SvidError';
  }
}

function parse(ders: Buffer[]): Certificate[] {
  try {
    return parseCertificates(ders);
  } catch (error) {
    throw new X509SvidError(`malformed certificate: ${(error as Error).message}`);
  }
}

function leafId(leaf: Certificate): SpiffeId {
  const { uris } = leaf.fields;
  if (uris.length !== 1)
    throw new X509SvidError(`leaf certificate must have exactly one URI SAN, has ${uris.length}`);
  try {
    return SpiffeId.parse(uris[0]!);
  } catch (error) {
    throw new X509SvidError(`leaf URI SAN is not a valid SPIFFE ID: ${(error as Error).message}`);
  }
}

/**
 * Verifies an X509-SVID presented by a peer (leaf first, then any intermediates) against a trust
 * domain's X.509 authorities, as the X509-SVID standard and go-spiffe's verifier do: one URI SAN
 * holding a SPIFFE ID, of the bundle's trust domain when it is named; a leaf that is not a CA and
 * has neither keyCertSign nor cRLSign; and a path to an authority through CA certificates, each
 * valid at `now`.
 */
export function verifyX509Svid(
  chainDer: Buffer[],
  authorities: Buffer[],
  now = Date.now(),
  trustDomain?: string,
): { spiffeId: SpiffeId; leaf: X509Certificate } {
  if (chainDer.length === 0) throw new X509SvidError('no certificates presented');
  const [leaf, ...intermediates] = parse(chainDer) as [Certificate, ...Certificate[]];
  const roots = parse(authorities);
  const spiffeId = leafId(leaf);
  if (isCa(leaf)) throw new X509SvidError('leaf certificate must not be a CA');
  if (leaf.fields.keyUsage & (KeyUsage.keyCertSign | KeyUsage.cRLSign)) {
    throw new X509SvidError('leaf certificate must not have the keyCertSign or cRLSign key usage');
  }
  if (trustDomain !== undefined && spiffeId.trustDomain !== trustDomain) {
    throw new X509SvidError(`no X.509 authorities for trust domain "${spiffeId.trustDomain}"`);
  }
  const expired = timeProblem(leaf, now, 'leaf certificate');
  if (expired) throw new X509SvidError(expired);
  if (roots.some((root) => root.der.equals(leaf.der))) return { spiffeId, leaf: leaf.cert };
  const result = findPath([leaf], intermediates, roots, now);
  if (!result.found) {
    throw new X509SvidError(
      `certificate signed by unknown authority${result.hint ? ` (possibly because ${result.hint})` : ''}`,
    );
  }
  return { spiffeId, leaf: leaf.cert };
}

/**
 * The X509-SVID standard's rules for an SVID handed to its owner (what go-spiffe checks when it
 * parses one from the Workload API): the leaf has one SPIFFE ID URI SAN, is not a CA, has
 * digitalSignature and neither keyCertSign nor cRLSign; every certificate after it is a CA with
 * keyCertSign. Returns the SVID's SPIFFE ID.
 */
export function parseX509Svid(chainDer: Buffer[]): SpiffeId {
  if (chainDer.length === 0) throw new X509SvidError('no certificates found');
  const [leaf, ...signing] = parse(chainDer) as [Certificate, ...Certificate[]];
  const spiffeId = leafId(leaf);
  if (isCa(leaf)) throw new X509SvidError('leaf certificate must not be a CA');
  const usage = leaf.fields.keyUsage;
  if ((usage & KeyUsage.digitalSignature) === 0)
    throw new X509SvidError('leaf certificate must have the digitalSignature key usage');
  if (usage & (KeyUsage.keyCertSign | KeyUsage.cRLSign))
    throw new X509SvidError('leaf certificate must not have the keyCertSign or cRLSign key usage');
  for (const certificate of signing) {
    if (!isCa(certificate)) throw new X509SvidError('signing certificate must be a CA');
    if ((certificate.fields.keyUsage & KeyUsage.keyCertSign) === 0)
      throw new X509SvidError('signing certificate must have the keyCertSign key usage');
  }
  return spiffeId;
}
