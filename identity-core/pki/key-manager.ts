import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

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

/** The keys file's shape, as SPIRE's "disk" KeyManager writes it: PKCS#8 DER, base64, by key id. */
interface KeysFile {
  keys: Record<string, string>;
}

/**
 * SPIRE's "disk" KeyManager: every key in one JSON file at `keys_path` (mode 0600), rewritten whole
 * beside and renamed over, so keys survive restarts and a crash never leaves half a file. Generating
 * is serialized: two keys made at once must both be kept.
 */
export class DiskKeyManager implements KeyManager {
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly keysPath: string) {}

  async generateKey(id: string): Promise<KeyObject> {
    checkId(id);
    const generated = this.writes.then(async () => {
      const file = await this.read();
      const key = newKey();
      file.keys[id] = key.export({ format: 'der', type: 'pkcs8' }).toString('base64');
      await mkdir(dirname(this.keysPath), { recursive: true, mode: 0o700 });
      const temp = `${this.keysPath}.${process.pid}.tmp`;
      await writeFile(temp, JSON.stringify(file, null, '\t'), { mode: 0o600 });
      await rename(temp, this.keysPath);
      return key;
    });
    this.writes = generated.catch(() => undefined);
    return generated;
  }

  async getKey(id: string): Promise<KeyObject | undefined> {
    checkId(id);
    const der = (await this.read()).keys[id];
    return der === undefined
      ? undefined
      : createPrivateKey({ key: Buffer.from(der, 'base64'), format: 'der', type: 'pkcs8' });
  }

  private async read(): Promise<KeysFile> {
    let text: string;
    try {
      text = await readFile(this.keysPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { keys: {} };
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as Partial<KeysFile>;
      return { keys: { ...(parsed.keys ?? {}) } };
    } catch (error) {
      throw new Error(`unable to decode keys JSON in ${this.keysPath}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}
