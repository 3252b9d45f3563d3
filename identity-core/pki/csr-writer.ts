import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { oid, seq, tlv } from '../spiffe/der.js';

const ECDSA_WITH_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const VERSION_1 = tlv(0x02, Buffer.from([0]));
const EMPTY_NAME = seq();
const NO_ATTRIBUTES = Buffer.from([0xa0, 0x00]);

/**
 * A PKCS#10 CSR for an EC P-256 key with an empty subject and no extensions: all SPIRE's server reads
 * from an agent's CSR is the key, since the identity comes from the entry.
 */
export function writeCsr(privateKey: KeyObject): Buffer {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const info = seq(VERSION_1, EMPTY_NAME, spki, NO_ATTRIBUTES);
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  return seq(info, ECDSA_WITH_SHA256, tlv(0x03, Buffer.from([0]), signature));
}
