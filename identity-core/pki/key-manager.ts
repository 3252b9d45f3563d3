import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where CA and JWT signing keys live; ids are chosen by the caller. */
export interface KeyManager {
  generateKey(id: string): Promise<KeyObject>;
  getKey(id: string): Promise<KeyObject | undefined>;
}

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;

function checkId(id: string): void {
  if (!SAFE_ID.test(id)) throw new Error(`invalid key id ${JSON.stringify(id)}`);
}

/** Keys that die with the process, as SPIRE's "memory" KeyManager: a restart means new CAs. */
export class MemoryKeyManager implements KeyManager {
  private readonly keys = new Map<string, KeyObject>();

  async generateKey(id: string): Promise<KeyObject> {
    checkId(id);
    const key = newKey();
    this.keys.set(id, key);
    return key;
  }

  async getKey(id: string): Promise<KeyObject | undefined> {
    return this.keys.get(id);
  }
}

/** One PKCS#8 PEM file per key (mode 0600, directory 0700), replaced atomically, so keys survive restarts and crashes. */
export class DiskKeyManager implements KeyManager {
  constructor(private readonly directory: string) {}

  async generateKey(id: string): Promise<KeyObject> {
    checkId(id);
    const key = newKey();
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const path = join(this.directory, `${id}.pem`);
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    await rename(temp, path);
    return key;
  }

  async getKey(id: string): Promise<KeyObject | undefined> {
    checkId(id);
    try {
      return createPrivateKey(await readFile(join(this.directory, `${id}.pem`)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }
}
