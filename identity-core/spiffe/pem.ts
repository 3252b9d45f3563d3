/** PEM text and the Workload API's concatenated DER: how certificates travel between files, CLIs and sockets. */
import { X509Certificate } from 'node:crypto';
import { readNode } from './der.js';

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const body = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** One DER certificate, refused when it does not parse or when bytes follow it. */
export function parseCertificateDer(der: Buffer): X509Certificate {
  let end: number;
  try {
    end = readNode(der, 0).end;
  } catch (error) {
    throw new Error(`x509: malformed certificate: ${(error as Error).message}`, { cause: error });
  }
  if (der[0] !== 0x30) throw new Error('x509: malformed certificate');
  if (end !== der.length) throw new Error('x509: trailing data after the certificate');
  try {
    return new X509Certificate(der);
  } catch (error) {
    throw new Error(`x509: malformed certificate: ${(error as Error).message}`, { cause: error });
  }
}

interface PemBlock {
  type: string;
  bytes: Buffer;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A line without its newline and trailing spaces, tabs and carriage returns, and what follows it. */
function line(text: string): [string, string] {
  const newline = text.indexOf('\n');
  const [head, rest] = newline === -1 ? [text, ''] : [text.slice(0, newline), text.slice(newline + 1)];
  return [head.replace(/[ \t\r]+$/, ''), rest];
}

/**
 * The PEM blocks of a text, decoded with RFC 7468's strictness as Go's encoding/pem applies it: a
 * block whose END line does not match, or whose body is not base64, is skipped, not half-read.
 */
function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let rest = text;
  for (;;) {
    if (rest.startsWith('-----BEGIN ')) rest = rest.slice('-----BEGIN '.length);
    else {
      const at = rest.indexOf('\n-----BEGIN ');
      if (at === -1) return blocks;
      rest = rest.slice(at + '\n-----BEGIN '.length);
    }
    let typeLine: string;
    [typeLine, rest] = line(rest);
    if (!typeLine.endsWith('-----')) continue;
    const type = typeLine.slice(0, -'-----'.length);
    let headers = 0;
    while (rest !== '') {
      const [header, next] = line(rest);
      if (!header.includes(':')) break;
      headers++;
      rest = next;
    }
    if (rest === '') return blocks;
    let bodyEnd: number;
    let trailerStart: number;
    if (headers === 0 && rest.startsWith('-----END ')) {
      bodyEnd = 0;
      trailerStart = '-----END '.length;
    } else {
      bodyEnd = rest.indexOf('\n-----END ');
      trailerStart = bodyEnd + '\n-----END '.length;
    }
    if (bodyEnd < 0) continue;
    const trailer = `${type}-----`;
    if (rest.slice(trailerStart, trailerStart + trailer.length) !== trailer) continue;
    if (line(rest.slice(trailerStart + trailer.length))[0] !== '') continue;
    const base64 = rest.slice(0, bodyEnd).replace(/[ \t\r\n]/g, '');
    if (base64.length % 4 !== 0 || !BASE64.test(base64)) continue;
    blocks.push({ type, bytes: Buffer.from(base64, 'base64') });
    rest = line(rest.slice(trailerStart))[1];
  }
}

/**
 * Every CERTIFICATE block of a PEM text, as DER; blocks of other types are passed over. Empty input is
 * an empty list, but text without a single PEM block is an error, not an empty list.
 */
export function parsePemCertificates(pem: string | Buffer): Buffer[] {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  if (text === '') return [];
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw new Error('no PEM blocks found');
  return blocks
    .filter((block) => block.type === 'CERTIFICATE')
    .map((block) => {
      parseCertificateDer(block.bytes);
      return block.bytes;
    });
}

/**
 * The Workload API carries certificate chains and bundles as DER certificates laid end to end.
 * Splits them, refusing anything that is not a sequence of whole, parseable certificates.
 */
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
    const certificate = bytes.subarray(offset, end);
    parseCertificateDer(certificate);
    certificates.push(certificate);
    offset = end;
  }
  return certificates;
}
