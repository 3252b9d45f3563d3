import type { X509Certificate } from 'node:crypto';
import { certificateFields, type CertificateFields } from './certificate-fields.js';
import { KeyUsage } from './certificate-key-ids.js';
import { parseCertificateDer } from './pem.js';
import { SpiffeId } from './spiffe-id.js';

export class X509SvidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'X509SvidError';
  }
}

interface Certificate {
  der: Buffer;
  cert: X509Certificate;
  fields: CertificateFields;
}

function parse(ders: Buffer[]): Certificate[] {
  try {
    return ders.map((der) => ({ der, cert: parseCertificateDer(der), fields: certificateFields(der) }));
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

const isCa = (certificate: Certificate) => certificate.fields.basicConstraints?.ca === true;

function timeProblem(certificate: Certificate, now: number, what: string): string | undefined {
  if (now < new Date(certificate.cert.validFrom).getTime()) return `${what} is not yet valid`;
  if (now > new Date(certificate.cert.validTo).getTime()) return `${what} has expired`;
  return undefined;
}

/** Why `parent` may not have signed `child` (RFC 5280 4.2.1.3 and 4.2.1.9), or undefined when it did. */
function signatureProblem(child: Certificate, parent: Certificate): string | undefined {
  const { version, basicConstraints, keyUsage } = parent.fields;
  if ((version === 3 && !basicConstraints) || (basicConstraints && !basicConstraints.ca))
    return 'its issuer is not a CA';
  if (keyUsage !== 0 && (keyUsage & KeyUsage.keyCertSign) === 0)
    return 'its issuer lacks the keyCertSign key usage';
  if (!child.cert.verify(parent.cert.publicKey)) return 'its signature does not verify';
  return undefined;
}

/**
 * Looks for a path from the last certificate of `path` to one of `roots` through `intermediates`, in
 * any order, as a TLS peer's chain is read: the chain a peer sends is a set of candidates, not a
 * promise. Returns the first reason a candidate was refused when no path exists.
 */
function findPath(
  path: Certificate[],
  intermediates: Certificate[],
  roots: Certificate[],
  now: number,
): { found: true } | { found: false; hint?: string } {
  const child = path.at(-1)!;
  let hint: string | undefined;
  const candidates = [
    ...roots.map((cert) => ({ cert, root: true })),
    ...intermediates.map((cert) => ({ cert, root: false })),
  ];
  for (const { cert: parent, root } of candidates) {
    if (!parent.fields.subject.equals(child.fields.issuer)) continue;
    if (path.some((c) => c.der.equals(parent.der))) continue;
    const problem =
      signatureProblem(child, parent) ??
      timeProblem(parent, now, root ? 'root certificate' : 'intermediate certificate') ??
      (!root && !isCa(parent) ? 'an intermediate certificate is not a CA' : undefined) ??
      (parent.fields.basicConstraints?.maxPathLength !== undefined &&
      path.length - 1 > parent.fields.basicConstraints.maxPathLength
        ? 'too many intermediates for a path length constraint'
        : undefined);
    if (problem) {
      hint ??= problem;
      continue;
    }
    if (root) return { found: true };
    const further = findPath([...path, parent], intermediates, roots, now);
    if (further.found) return further;
    hint ??= further.hint;
  }
  return { found: false, ...(hint ? { hint } : {}) };
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
