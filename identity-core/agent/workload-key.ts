import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface KeyAndCsr {
  /** PKCS#8 DER, as the Workload API hands keys to workloads. */
  privateKeyPkcs8: Buffer;
  /** PKCS#10 DER with an empty subject: the server takes the identity from the entry, not the CSR. */
  csr: Buffer;
}

/** A fresh P-256 key and a CSR for it, for one SVID (workload or agent). */
export async function newKeyAndCsr(): Promise<KeyAndCsr> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: algorithm });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { privateKeyPkcs8: Buffer.from(pkcs8), csr: Buffer.from(csr.rawData) };
}
