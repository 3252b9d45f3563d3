/**
 * A probe's SVID directory: every X509-SVID it received, as `<serial>.pem` (chain, leaf first, then the
 * PKCS#8 key), and the X.509 bundle it trusts now, as `bundle.pem`. Old SVIDs are kept so a drill can
 * replay one after its authority was revoked; the bundle lets a caller verify the probe's server as
 * the probe itself would.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SvidCredentials } from './probe-handshake.js';

const BUNDLE_FILE = 'bundle.pem';
const KEY_BLOCK = /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n?/;

/** Readers may look at any moment: write beside, then rename over. */
function writeWhole(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function writeSvidFile(dir: string, serial: string, svid: SvidCredentials): void {
  mkdirSync(dir, { recursive: true });
  writeWhole(join(dir, `${serial}.pem`), svid.chainPem + svid.keyPem);
}

/** The SVID received with this serial, or undefined when the probe never stored it. */
export function readSvidFile(dir: string, serial: string): SvidCredentials | undefined {
  const path = join(dir, `${serial}.pem`);
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  const key = KEY_BLOCK.exec(text);
  if (!key) throw new Error(`${path} holds no private key`);
  return { chainPem: text.replace(KEY_BLOCK, ''), keyPem: key[0] };
}

/** Serials of every SVID stored so far. */
export function storedSerials(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.pem') && name !== BUNDLE_FILE)
    .map((name) => name.slice(0, -'.pem'.length));
}

export function writeBundleFile(dir: string, bundlePem: string): void {
  mkdirSync(dir, { recursive: true });
  writeWhole(join(dir, BUNDLE_FILE), bundlePem);
}

/** The bundle the probe trusts now, or undefined before it received one. */
export function readBundleFile(dir: string): string | undefined {
  const path = join(dir, BUNDLE_FILE);
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
