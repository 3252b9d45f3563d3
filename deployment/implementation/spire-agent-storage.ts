/**
 * A real spire-agent's (v1.13.3) identity as it keeps it in its data directory: `agent-data.json`
 * (its storage: the SVID chain and the bundle, each certificate PEM, as JSON base64 bytes) and
 * `keys.json` (the disk KeyManager: PKCS#8 keys, base64, by key id). Which key is the SVID's is
 * found as the agent finds it: the one whose public key the SVID's leaf carries.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredAgentIdentity } from './implementation.js';

const STORAGE_FILE = 'agent-data.json';
const KEYS_FILE = 'keys.json';

interface StorageJson {
  svid?: string[] | null;
  bundle?: string[] | null;
}

interface KeysJson {
  keys?: Record<string, string> | null;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new Error(`${path} is not the JSON a spire-agent writes: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** DER of a certificate stored as base64 of its PEM. */
function certificateDer(stored: string): Buffer {
  return new X509Certificate(Buffer.from(stored, 'base64').toString('utf8')).raw;
}

const spki = (key: ReturnType<typeof createPublicKey>) => key.export({ type: 'spki', format: 'der' });

export async function readSpireAgentIdentity(dataDir: string): Promise<StoredAgentIdentity | undefined> {
  const storagePath = join(dataDir, STORAGE_FILE);
  const storage = await readJson<StorageJson>(storagePath);
  const chain = (storage?.svid ?? []).map(certificateDer);
  if (chain.length === 0) return undefined;
  const leaf = new X509Certificate(chain[0]!);
  const spiffeId = /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? '')?.[1];
  if (!spiffeId) throw new Error(`the SVID in ${storagePath} has no SPIFFE ID`);
  const leafKey = spki(leaf.publicKey);
  const keys = Object.values((await readJson<KeysJson>(join(dataDir, KEYS_FILE)))?.keys ?? {});
  const key = keys
    .map((stored) => Buffer.from(stored, 'base64'))
    .find((der) =>
      spki(createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }))).equals(leafKey),
    );
  // The agent itself generates a new key and attests afresh in that case: nothing usable is stored.
  if (!key) return undefined;
  return { spiffeId, chain, key, bundleRoots: (storage?.bundle ?? []).map(certificateDer) };
}

/** Both files go: with neither, the agent attests afresh from its trust_bundle_path at its next start. */
export async function forgetSpireAgentIdentity(dataDir: string): Promise<void> {
  await rm(join(dataDir, STORAGE_FILE), { force: true });
  await rm(join(dataDir, KEYS_FILE), { force: true });
}
