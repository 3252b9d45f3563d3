/**
 * The parts of a DER certificate that the X509-SVID rules and chain building look at, read with the
 * small DER reader so that they are read exactly as encoded (Node's `X509Certificate.ca`, for one,
 * is false for a CA whose keyUsage lacks keyCertSign, which is not what basicConstraints says).
 */
import { certificateExtensions, certificateKeyUsage } from './certificate-key-ids.js';
import { children, readNode, type DerNode } from './der.js';

export interface CertificateFields {
  /** 1, 2 or 3, as X.509 counts them. */
  version: number;
  /** DER of the issuer and subject Names, compared byte for byte when looking for a parent. */
  issuer: Buffer;
  subject: Buffer;
  /** Absent when the certificate has no basicConstraints extension. */
  basicConstraints?: { ca: boolean; maxPathLength?: number };
  /** KeyUsage flags (see `KeyUsage`); 0 when the extension is absent. */
  keyUsage: number;
  /** Every uniformResourceIdentifier of the subjectAltName extension, in order. */
  uris: string[];
}

const BASIC_CONSTRAINTS = '2.5.29.19';
const SUBJECT_ALT_NAME = '2.5.29.17';

function integer(der: Buffer, node: DerNode): number {
  let value = 0;
  for (let i = node.contentStart; i < node.end; i++) value = value * 256 + der[i]!;
  return value;
}

export function certificateFields(der: Buffer): CertificateFields {
  const tbs = children(der, readNode(der, 0))[0];
  if (!tbs) throw new Error('x509: malformed certificate');
  const fields = children(der, tbs);
  const versioned = fields[0]?.tag === 0xa0;
  let version = 1;
  if (versioned) {
    const inner = readNode(der, fields[0]!.contentStart, fields[0]!.end);
    version = integer(der, inner) + 1;
  }
  const [issuer, , subject] = fields.slice(versioned ? 3 : 2);
  if (!issuer || !subject) throw new Error('x509: malformed certificate');
  const extensions = certificateExtensions(der);
  const result: CertificateFields = {
    version,
    issuer: der.subarray(issuer.start, issuer.end),
    subject: der.subarray(subject.start, subject.end),
    keyUsage: certificateKeyUsage(der) ?? 0,
    uris: [],
  };
  const constraints = extensions.get(BASIC_CONSTRAINTS);
  if (constraints) {
    const parts = children(der, readNode(der, constraints.contentStart, constraints.end));
    const flag = parts.find((part) => part.tag === 0x01);
    const pathLength = parts.find((part) => part.tag === 0x02);
    result.basicConstraints = {
      ca: flag !== undefined && der[flag.contentStart] !== 0,
      ...(pathLength ? { maxPathLength: integer(der, pathLength) } : {}),
    };
  }
  const names = extensions.get(SUBJECT_ALT_NAME);
  if (names) {
    for (const name of children(der, readNode(der, names.contentStart, names.end))) {
      if (name.tag === 0x86) result.uris.push(der.toString('latin1', name.contentStart, name.end));
    }
  }
  return result;
}
