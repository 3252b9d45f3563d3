import { X509Certificate, createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { children, oid, positiveInteger, readNode, seq, time, tlv } from '../spiffe/der.js';
import { BACKDATE_SECONDS } from './x509-ca.js';
import { x509AuthorityId } from '../spiffe/trust-bundle.js';

export interface MintedSvid {
  der: Buffer;
  serial: bigint;
  /** Unix seconds. */
  notBefore: number;
  notAfter: number;
}

const BOOLEAN_TRUE = tlv(0x01, Buffer.from([0xff]));
const octet = (content: Buffer) => tlv(0x04, content);
const extension = (id: string | Buffer, critical: boolean, value: Buffer) => {
  const encodedId = typeof id === 'string' ? oid(id) : id;
  return critical ? seq(encodedId, BOOLEAN_TRUE, octet(value)) : seq(encodedId, octet(value));
};
// Encoded once: OIDs the minter writes into every SVID.
const SUBJECT_KEY_ID = oid('2.5.29.14');
const SUBJECT_ALT_NAME = oid('2.5.29.17');
const COMMON_NAME = oid('2.5.4.3');

/** digitalSignature | keyEncipherment | keyAgreement, as SPIRE sets them on X509-SVIDs. */
const KEY_USAGE = extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x03, 0xa8])));
const EXT_KEY_USAGE = extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')));
const BASIC_CONSTRAINTS = extension('2.5.29.19', true, seq());
const FIXED_EXTENSIONS = Buffer.concat([KEY_USAGE, EXT_KEY_USAGE, BASIC_CONSTRAINTS]);
const VERSION_3 = tlv(0xa0, tlv(0x02, Buffer.from([2])));
const SUBJECT_PREFIX = [
  tlv(0x31, seq(oid('2.5.4.6'), tlv(0x13, Buffer.from('US')))),
  tlv(0x31, seq(oid('2.5.4.10'), tlv(0x13, Buffer.from('SPIRE')))),
];

/**
 * Serial numbers come from a pool of random bytes refilled 4 KiB at a time: one randomBytes call per
 * SVID showed up at ~3 % of minting time in a CPU profile.
 */
class SerialPool {
  private pool = Buffer.alloc(0);
  private offset = 0;

  next(): Buffer {
    if (this.offset + 16 > this.pool.length) {
      this.pool = randomBytes(4096);
      this.offset = 0;
    }
    const serial = Buffer.from(this.pool.subarray(this.offset, this.offset + 16));
    this.offset += 16;
    // Positive and never zero-led, so the INTEGER is always 16 bytes.
    serial[0] = (serial[0]! & 0x7f) | 0x01;
    return serial;
  }
}

const serials = new SerialPool();

function signatureAlgorithm(key: KeyObject): { id: Buffer; hash: string } {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1')
    return { id: seq(oid('1.2.840.10045.4.3.2')), hash: 'sha256' };
  if (key.asymmetricKeyType === 'ec' && curve === 'secp384r1')
    return { id: seq(oid('1.2.840.10045.4.3.3')), hash: 'sha384' };
  throw new Error('the SVID minter signs with EC P-256 or P-384 CA keys');
}

/** The subject Name of a certificate, as its raw DER (the issuer of everything the CA signs). */
function subjectOf(certDer: Buffer): Buffer {
  const cert = readNode(certDer, 0);
  const tbs = children(certDer, cert)[0]!;
  const fields = children(certDer, tbs);
  const offset = fields[0]!.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4]!;
  return certDer.subarray(subject.start, subject.end);
}

/** SHA-1 of the subjectPublicKey bits, RFC 5280's method (1) for key identifiers. */
function keyIdentifier(spki: Buffer): Buffer {
  const outer = readNode(spki, 0);
  const bits = children(spki, outer)[1]!;
  return createHash('sha1')
    .update(spki.subarray(bits.contentStart + 1, bits.end))
    .digest();
}

/**
 * Mints X509-SVIDs for one CA from a pre-encoded DER template: the issuer, AKI and fixed extensions are
 * encoded once, each SVID adds only its serial, validity, key and SANs, and node:crypto signs it.
 * @peculiar/x509's generator manages ~350 certificates/s here; this is bounded by the signature.
 */
export class X509SvidMinter {
  private readonly issuer: Buffer;
  private readonly algorithm: { id: Buffer; hash: string };
  private readonly authorityKeyId: Buffer;
  private readonly caNotAfter: number;
  /** Validity encoded for the last (NotBefore, NotAfter) pair: SVIDs minted within a second share it. */
  private validity: { key: string; der: Buffer } = { key: '', der: Buffer.alloc(0) };

  constructor(private readonly ca: { der: Buffer; privateKey: KeyObject }) {
    this.issuer = Buffer.from(subjectOf(ca.der));
    this.algorithm = signatureAlgorithm(ca.privateKey);
    this.authorityKeyId = extension(
      '2.5.29.35',
      false,
      seq(tlv(0x80, Buffer.from(x509AuthorityId(ca.der), 'hex'))),
    );
    this.caNotAfter = Math.floor(new Date(new X509Certificate(ca.der).validTo).getTime() / 1000);
  }

  private validityFor(notBefore: number, notAfter: number): Buffer {
    const key = `${notBefore}:${notAfter}`;
    if (this.validity.key !== key) this.validity = { key, der: seq(time(notBefore), time(notAfter)) };
    return this.validity.der;
  }

  mint(options: {
    spiffeId: string;
    publicKeySpki: Buffer;
    ttlSeconds: number;
    now?: number;
    dnsNames?: string[];
  }): MintedSvid {
    const now = Math.floor((options.now ?? Date.now()) / 1000);
    const notBefore = now - BACKDATE_SECONDS;
    const notAfter = Math.min(now + options.ttlSeconds, this.caNotAfter);
    if (notAfter <= now) throw new Error('the signing CA has expired');
    const serialBytes = serials.next();
    const dnsNames = options.dnsNames ?? [];
    const subject =
      dnsNames.length > 0
        ? seq(...SUBJECT_PREFIX, tlv(0x31, seq(COMMON_NAME, tlv(0x0c, Buffer.from(dnsNames[0]!)))))
        : seq(...SUBJECT_PREFIX);
    const names = [
      tlv(0x86, Buffer.from(options.spiffeId)),
      ...dnsNames.map((name) => tlv(0x82, Buffer.from(name))),
    ];
    const extensions = tlv(
      0xa3,
      seq(
        FIXED_EXTENSIONS,
        extension(SUBJECT_KEY_ID, false, octet(keyIdentifier(options.publicKeySpki))),
        this.authorityKeyId,
        extension(SUBJECT_ALT_NAME, false, seq(...names)),
      ),
    );
    const tbs = seq(
      VERSION_3,
      positiveInteger(serialBytes),
      this.algorithm.id,
      this.issuer,
      this.validityFor(notBefore, notAfter),
      subject,
      options.publicKeySpki,
      extensions,
    );
    const signature = sign(this.algorithm.hash, tbs, { key: this.ca.privateKey, dsaEncoding: 'der' });
    const der = seq(tbs, this.algorithm.id, tlv(0x03, Buffer.from([0]), signature));
    return { der, serial: BigInt(`0x${serialBytes.toString('hex')}`), notBefore, notAfter };
  }
}
