/**
 * Chain building from a leaf to one of a set of roots through candidate intermediates, shared by the
 * X509-SVID verifier and x509pop node attestation (which verifies a node's own certificate the same way).
 */
import type { X509Certificate } from 'node:crypto';
import { certificateFields, type CertificateFields } from './certificate-fields.js';
import { KeyUsage } from './certificate-key-ids.js';
import { parseCertificateDer } from './pem.js';

export interface Certificate {
  der: Buffer;
  cert: X509Certificate;
  fields: CertificateFields;
}

/** Parses DER certificates; throws on the first malformed one. */
export function parseCertificates(ders: Buffer[]): Certificate[] {
  return ders.map((der) => ({ der, cert: parseCertificateDer(der), fields: certificateFields(der) }));
}

export const isCa = (certificate: Certificate) => certificate.fields.basicConstraints?.ca === true;

export function timeProblem(certificate: Certificate, now: number, what: string): string | undefined {
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
 * promise. Returns the path found (leaf first, the root last), or the first reason a candidate was
 * refused when no path exists.
 */
export function findPath(
  path: Certificate[],
  intermediates: Certificate[],
  roots: Certificate[],
  now: number,
): { found: true; path: Certificate[] } | { found: false; hint?: string } {
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
    if (root) return { found: true, path: [...path, parent] };
    const further = findPath([...path, parent], intermediates, roots, now);
    if (further.found) return further;
    hint ??= further.hint;
  }
  return { found: false, ...(hint ? { hint } : {}) };
}
