import { X509Certificate } from 'node:crypto';
import { KeyUsage, certificateKeyUsage } from './certificate-key-ids.js';
import { SpiffeId } from './spiffe-id.js';

export class X509SvidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'X509SvidError';
  }
}

function uriSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((name) => name.startsWith('URI:'))
    .map((name) => name.slice(4));
}

function checkTime(cert: X509Certificate, now: number, what: string): void {
  if (now < new Date(cert.validFrom).getTime()) throw new X509SvidError(`${what} is not yet valid`);
  if (now > new Date(cert.validTo).getTime()) throw new X509SvidError(`${what} has expired`);
}

/**
 * Verifies an X509-SVID chain (leaf first, then intermediates) against a set of root authorities, with
 * the X509-SVID standard's rules: one URI SAN holding a SPIFFE ID; the leaf is not a CA, signs with
 * digitalSignature and never keyCertSign/cRLSign; every signing certificate is a CA with keyCertSign.
 */
export function verifyX509Svid(
  chainDer: Buffer[],
  authorities: Buffer[],
  now = Date.now(),
): { spiffeId: SpiffeId; leaf: X509Certificate } {
  if (chainDer.length === 0) throw new X509SvidError('no certificates presented');
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    chain = chainDer.map((der) => new X509Certificate(der));
    roots = authorities.map((der) => new X509Certificate(der));
  } catch (error) {
    throw new X509SvidError(`malformed certificate: ${(error as Error).message}`);
  }
  const leaf = chain[0]!;
  const uris = uriSans(leaf);
  if (uris.length !== 1)
    throw new X509SvidError(`leaf certificate must have exactly one URI SAN, has ${uris.length}`);
  let spiffeId: SpiffeId;
  try {
    spiffeId = SpiffeId.parse(uris[0]!);
  } catch (error) {
    throw new X509SvidError(`leaf URI SAN is not a valid SPIFFE ID: ${(error as Error).message}`);
  }
  if (leaf.ca) throw new X509SvidError('leaf certificate must not be a CA');
  const leafUsage = certificateKeyUsage(chainDer[0]!);
  if (leafUsage === undefined || (leafUsage & KeyUsage.digitalSignature) === 0) {
    throw new X509SvidError('leaf certificate must have the digitalSignature key usage');
  }
  if (leafUsage & (KeyUsage.keyCertSign | KeyUsage.cRLSign)) {
    throw new X509SvidError('leaf certificate must not have the keyCertSign or cRLSign key usage');
  }
  checkTime(leaf, now, 'leaf certificate');

  chainDer.slice(1).forEach((der, index) => {
    const cert = chain[index + 1]!;
    if (!cert.ca) throw new X509SvidError('signing certificate must be a CA');
    const usage = certificateKeyUsage(der);
    if (usage === undefined || (usage & KeyUsage.keyCertSign) === 0) {
      throw new X509SvidError('signing certificate must have the keyCertSign key usage');
    }
    checkTime(cert, now, 'intermediate certificate');
  });

  for (let i = 0; i < chain.length - 1; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
      throw new X509SvidError('certificate chain is broken: a certificate is not signed by the next one');
    }
  }
  const top = chain.at(-1)!;
  const root = roots.find((r) => top.checkIssued(r) && top.verify(r.publicKey));
  if (!root) throw new X509SvidError('certificate signed by unknown authority');
  checkTime(root, now, 'root certificate');
  return { spiffeId, leaf };
}
