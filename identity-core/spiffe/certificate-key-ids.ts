import { children, oidToString, readNode, type DerNode } from './der.js';

const SUBJECT_KEY_ID = '2.5.29.14';
const AUTHORITY_KEY_ID = '2.5.29.35';

/** The extnValue contents of each extension of a DER certificate, by OID. */
export function certificateExtensions(der: Buffer): Map<string, DerNode> {
  const found = new Map<string, DerNode>();
  const tbs = children(der, readNode(der, 0))[0];
  if (!tbs) return found;
  const block = children(der, tbs).find((field) => field.tag === 0xa3);
  if (!block) return found;
  const list = children(der, block)[0];
  if (!list) return found;
  for (const extension of children(der, list)) {
    const parts = children(der, extension);
    const id = parts[0];
    const value = parts.at(-1);
    if (id && value && value.tag === 0x04)
      found.set(oidToString(der.subarray(id.contentStart, id.end)), value);
  }
  return found;
}

/**
 * Subject and authority key identifiers (lowercase hex, '' when absent) read with the small DER
 * reader: the agent looks these up for every SVID it caches and every bundle it receives, and a full
 * X.509 library would cost it more memory than everything else it loads.
 */
export function certificateKeyIds(der: Buffer): { subjectKeyId: string; authorityKeyId: string } {
  const found = certificateExtensions(der);
  let subjectKeyId = '';
  let authorityKeyId = '';
  const ski = found.get(SUBJECT_KEY_ID);
  if (ski) {
    const inner = readNode(der, ski.contentStart, ski.end);
    if (inner.tag === 0x04) subjectKeyId = der.toString('hex', inner.contentStart, inner.end);
  }
  const aki = found.get(AUTHORITY_KEY_ID);
  if (aki) {
    const keyId = children(der, readNode(der, aki.contentStart, aki.end)).find((field) => field.tag === 0x80);
    if (keyId) authorityKeyId = der.toString('hex', keyId.contentStart, keyId.end);
  }
  return { subjectKeyId, authorityKeyId };
}

/** KeyUsage bits as RFC 5280 numbers them (bit 0 digitalSignature … bit 8 decipherOnly), as flags 1 << bit. */
export const KeyUsage = {
  digitalSignature: 1 << 0,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
} as const;

/** The KeyUsage extension as flags (see `KeyUsage`), or undefined when the certificate has none. */
export function certificateKeyUsage(der: Buffer): number | undefined {
  const value = certificateExtensions(der).get('2.5.29.15');
  if (!value) return undefined;
  const bits = readNode(der, value.contentStart, value.end);
  if (bits.tag !== 0x03 || bits.end - bits.contentStart < 1) return undefined;
  let flags = 0;
  for (let i = 0; i < 9; i++) {
    const byte = der[bits.contentStart + 1 + (i >> 3)];
    if (byte !== undefined && bits.contentStart + 1 + (i >> 3) < bits.end && byte & (0x80 >> (i & 7)))
      flags |= 1 << i;
  }
  return flags;
}
