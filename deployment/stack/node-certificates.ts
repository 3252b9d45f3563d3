/**
 * The deployment-private CA that x509pop agents prove their node identity with: a root kept in the
 * run directory (what the servers' x509pop `ca_bundle_path` names) and one certificate and key per
 * agent, as a platform team would provision hosts. Each file is created once and kept, so a node's
 * certificate, and with it its agent ID, survives restarts.
 */
import 'reflect-metadata';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Node certificates outlive any drill; x509pop checks only that they chain and are valid now. */
const VALIDITY_MS = 365 * 24 * 3600_000;

export interface NodeCertificateFiles {
  certificatePath: string;
  privateKeyPath: string;
}

function writeAtomically(path: string, text: string, mode: number): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  renameSync(temp, path);
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString('hex');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return (await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign'])) as CryptoKey;
}

/** The node CA of a run directory: `<dir>/x509pop-ca.pem` and its key, created on first use. */
export class NodeCertificateAuthority {
  readonly bundlePath: string;
  private readonly keyPath: string;

  constructor(private readonly dir: string) {
    this.bundlePath = join(dir, 'x509pop-ca.pem');
    this.keyPath = join(dir, 'x509pop-ca.key.pem');
  }

  async ensure(): Promise<void> {
    if (existsSync(this.bundlePath) && existsSync(this.keyPath)) return;
    mkdirSync(this.dir, { recursive: true });
    const keys = await newKeys();
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'O=spire-drill, CN=x509pop node CA',
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + VALIDITY_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeAtomically(this.keyPath, await pkcs8Pem(keys.privateKey), 0o600);
    writeAtomically(this.bundlePath, cert.toString('pem') + '\n', 0o644);
  }

  /** Node `name`'s certificate (CN=name, digitalSignature) and key, issued once and then kept. */
  async ensureNode(name: string, dir: string): Promise<NodeCertificateFiles> {
    const files = {
      certificatePath: join(dir, `${name}-x509pop.pem`),
      privateKeyPath: join(dir, `${name}-x509pop.key.pem`),
    };
    if (existsSync(files.certificatePath) && existsSync(files.privateKeyPath)) return files;
    await this.ensure();
    const ca = new x509.X509Certificate(readFileSync(this.bundlePath, 'utf8'));
    const keys = await newKeys();
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `O=spire-drill, CN=${name}`,
      issuer: ca.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + VALIDITY_MS),
      publicKey: keys.publicKey,
      signingKey: await importPrivateKey(readFileSync(this.keyPath, 'utf8')),
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        await x509.AuthorityKeyIdentifierExtension.create(ca),
      ],
    });
    mkdirSync(dir, { recursive: true });
    writeAtomically(files.privateKeyPath, await pkcs8Pem(keys.privateKey), 0o600);
    writeAtomically(files.certificatePath, cert.toString('pem') + '\n', 0o644);
    return files;
  }
}
