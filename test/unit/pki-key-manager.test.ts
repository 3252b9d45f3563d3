import { createPublicKey } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskKeyManager, MemoryKeyManager } from '../../identity-core/pki/key-manager.js';
import { makeRunDir } from '../support/run-dir.js';

describe('key managers', () => {
  const run = makeRunDir('sdkm-');
  afterAll(() => run.remove());

  it("keeps disk keys in one 0600 JSON file at keys_path, as SPIRE's, that a new manager finds again", async () => {
    const path = join(run.dir, 'data', 'keys.json');
    const manager = new DiskKeyManager(path);
    const [key, other] = await Promise.all([manager.generateKey('x509-ca-1'), manager.generateKey('jwt-1')]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(path, 'utf8')) as { keys: Record<string, string> };
    expect(Object.keys(file.keys).sort()).toEqual(['jwt-1', 'x509-ca-1']);
    const again = await new DiskKeyManager(path).getKey('x509-ca-1');
    expect(createPublicKey(again!).export({ format: 'jwk' })).toEqual(
      createPublicKey(key).export({ format: 'jwk' }),
    );
    const jwt = await new DiskKeyManager(path).getKey('jwt-1');
    expect(createPublicKey(jwt!).export({ format: 'jwk' })).toEqual(
      createPublicKey(other).export({ format: 'jwk' }),
    );
    expect(await new DiskKeyManager(path).getKey('missing')).toBeUndefined();
    writeFileSync(path, '{not json');
    await expect(new DiskKeyManager(path).getKey('x509-ca-1')).rejects.toThrow(/unable to decode keys JSON/);
  });

  it('forgets memory keys with the manager and refuses ids that could escape the directory', async () => {
    const memory = new MemoryKeyManager();
    await memory.generateKey('a');
    expect(await memory.getKey('a')).toBeDefined();
    expect(await new MemoryKeyManager().getKey('a')).toBeUndefined();
    await expect(new DiskKeyManager(join(run.dir, 'k.json')).generateKey('../escape')).rejects.toThrow(
      /invalid key id/,
    );
  });
});
