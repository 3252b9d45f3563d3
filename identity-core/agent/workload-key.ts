import { generateKeyPairSync } from 'node:crypto';
import { writeCsr } from '../pki/csr-writer.js';

export interface KeyAndCsr {
  /** PKCS#8 DER, as the Workload API hands keys to workloads. */
  privateKeyPkcs8: Buffer;
  /** PKCS#10 DER with an empty subject: the server takes the identity from the entry, not the CSR. */
  csr: Buffer;
}

/** A fresh P-256 key and a CSR for it, for one SVID (workload or agent). */
export async function newKeyAndCsr(): Promise<KeyAndCsr> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKeyPkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }), csr: writeCsr(privateKey) };
}
