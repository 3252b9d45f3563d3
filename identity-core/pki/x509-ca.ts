import 'reflect-metadata';
import { createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { x509AuthorityId } from '../spiffe/trust-bundle.js';

type CryptoKey = webcrypto.CryptoKey;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface CaCertificate {
  der: Buffer;
  /** Unix seconds. */
  notBefore: number;
  notAfter: number;
  /** Lowercase hex SubjectKeyIdentifier, the id SPIRE's LocalAuthority API uses. */
  authorityId: string;
}

/** Clock skew allowance, as SPIRE backdates every certificate it issues. */
export const BACKDATE_SECONDS = 10;

interface SigningAlgorithm {
  name: 'ECDSA';
  namedCurve: string;
  hash: string;
}

function algorithmOf(key: KeyObject): SigningAlgorithm {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1')) {
    throw new Error('CA keys must be EC P-256 or P-384');
  }
  return curve === 'prime256v1'
    ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
}

/** The signing key as WebCrypto wants it. */
function importSigningKey(key: KeyObject, algorithm: SigningAlgorithm): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), algorithm, false, [
    'sign',
  ]) as Promise<CryptoKey>;
}

/** A positive 128-bit serial and the CA subject naming it, as SPIRE's CA certificates are named. */
function serialAndSubject(): { serialNumber: string; name: string } {
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const hex = serial.toString('hex');
  return { serialNumber: hex, name: `C=US, O=SPIFFE, 2.5.4.5=${BigInt(`0x${hex}`).toString(10)}` };
}

/** Extensions every CA certificate here carries, for a key and its trust domain. */
async function caExtensions(
  publicKey: x509.PublicKey | CryptoKey,
  trustDomain: string,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
  ];
}

/**
 * A self-signed root for a trust domain, per the X509-SVID standard's signing-certificate rules:
 * cA true, keyCertSign + cRLSign (+ digitalSignature), URI SAN spiffe://<td> with no path. Not a hot
 * path, so @peculiar/x509 builds it.
 */
export async function createSelfSignedCa(options: {
  trustDomain: string;
  privateKey: KeyObject;
  ttlSeconds: number;
  now?: number;
}): Promise<CaCertificate> {
  const algorithm = algorithmOf(options.privateKey);
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  const notBefore = nowSeconds - BACKDATE_SECONDS;
  const notAfter = nowSeconds + options.ttlSeconds;
  const privateKey = await importSigningKey(options.privateKey, algorithm);
  const publicKey = (await webcrypto.subtle.importKey(
    'spki',
    createPublicKey(options.privateKey).export({ format: 'der', type: 'spki' }),
    algorithm,
    true,
    ['verify'],
  )) as CryptoKey;
  const { serialNumber, name } = serialAndSubject();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber,
    name,
    notBefore: new Date(notBefore * 1000),
    notAfter: new Date(notAfter * 1000),
    keys: { privateKey, publicKey },
    signingAlgorithm: algorithm,
    extensions: await caExtensions(publicKey, options.trustDomain),
  });
  const der = Buffer.from(cert.rawData);
  return { der, notBefore, notAfter, authorityId: x509AuthorityId(der) };
}

/** Whether a CA certificate names itself as its issuer: a root. */
export function isSelfSigned(der: Buffer): boolean {
  const cert = new x509.X509Certificate(der);
  return cert.subject === cert.issuer;
}

/** Attribute order of a subject as Go writes a pkix.Name, which drops attributes it does not know. */
const GO_NAME_ORDER = ['C', 'ST', 'L', 'street', 'postalCode', 'O', 'OU', 'CN', '2.5.4.5'];

/**
 * A downstream CA's subject as SPIRE names it: the issuing CA's subject with its organizational unit
 * set to DOWNSTREAM-<n>, n the length of the issuer's chain up to (not including) the root, or 1
 * under a root.
 */
export function downstreamCaSubject(issuerSubject: x509.Name, parentChainLength: number): x509.Name {
  const attributes = new Map<string, string[]>();
  for (const rdn of issuerSubject.toJSON())
    for (const [type, values] of Object.entries(rdn))
      attributes.set(type, [...(attributes.get(type) ?? []), ...values]);
  attributes.set('OU', [`DOWNSTREAM-${Math.max(1, parentChainLength)}`]);
  return new x509.Name(
    GO_NAME_ORDER.filter((type) => attributes.has(type)).flatMap((type) =>
      attributes.get(type)!.map((value) => ({ [type]: [value] })),
    ),
  );
}

/**
 * An intermediate CA for a downstream server, signed by this server's active CA (NewDownstreamX509CA):
 * the same signing-certificate rules as a root, the key taken from the downstream's CSR, SPIRE's
 * subject (downstreamCaSubject), and NotAfter capped at the issuer's so no chain outlives its root.
 */
export async function signDownstreamCa(options: {
  trustDomain: string;
  publicKeySpki: Buffer;
  issuer: { der: Buffer; privateKey: KeyObject };
  /** Certificates of the issuer's chain below the root (0 when the issuer is the root). */
  parentChainLength: number;
  ttlSeconds: number;
  now?: number;
}): Promise<CaCertificate> {
  const algorithm = algorithmOf(options.issuer.privateKey);
  const issuerCert = new x509.X509Certificate(options.issuer.der);
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  const notBefore = nowSeconds - BACKDATE_SECONDS;
  const issuerNotAfter = Math.floor(issuerCert.notAfter.getTime() / 1000);
  const notAfter = Math.min(nowSeconds + options.ttlSeconds, issuerNotAfter);
  if (notAfter <= nowSeconds) throw new Error('the signing CA has expired');
  const signingKey = await importSigningKey(options.issuer.privateKey, algorithm);
  const publicKey = new x509.PublicKey(options.publicKeySpki);
  const { serialNumber } = serialAndSubject();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: downstreamCaSubject(issuerCert.subjectName, options.parentChainLength).toString(),
    issuer: issuerCert.subject,
    notBefore: new Date(notBefore * 1000),
    notAfter: new Date(notAfter * 1000),
    publicKey,
    signingKey,
    signingAlgorithm: algorithm,
    extensions: [
      ...(await caExtensions(publicKey, options.trustDomain)),
      new x509.AuthorityKeyIdentifierExtension(x509AuthorityId(options.issuer.der)),
    ],
  });
  const der = Buffer.from(cert.rawData);
  return { der, notBefore, notAfter, authorityId: x509AuthorityId(der) };
}
