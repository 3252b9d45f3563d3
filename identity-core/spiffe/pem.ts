/** PEM text and the Workload API's concatenated DER: how certificates travel between files, CLIs and sockets. */
import { X509Certificate } from 'node:crypto';

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const body = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Every CERTIFICATE block of a PEM text, as DER. */
export function parsePemCertificates(pem: string | Buffer): Buffer[] {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const ders: Buffer[] = [];
  for (const match of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    const der = Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64');
    new X509Certificate(der);
    ders.push(der);
  }
  return ders;
}

/** The Workload API carries certificate chains and bundles as DER certificates laid end to end. */
/** Splits concatenated DER certificates; throws if the bytes are not a sequence of whole DER SEQUENCEs. */
export function splitDerCertificates(bytes: Buffer): Buffer[] {
  const certificates: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes[offset] !== 0x30) throw new Error(`x509: malformed certificate at byte ${offset}`);
    const first = bytes[offset + 1];
    if (first === undefined) throw new Error('x509: truncated certificate');
    let length: number;
    let header: number;
    if (first < 0x80) {
      length = first;
      header = 2;
    } else {
      const count = first & 0x7f;
      if (count === 0 || count > 4 || offset + 2 + count > bytes.length)
        throw new Error('x509: malformed length');
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + (bytes[offset + 2 + i] as number);
      header = 2 + count;
    }
    const end = offset + header + length;
    if (end > bytes.length) throw new Error('x509: truncated certificate');
    certificates.push(bytes.subarray(offset, end));
    offset = end;
  }
  return certificates;
}
