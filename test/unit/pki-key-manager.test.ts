import { createPublicKey } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskKeyManager, MemoryKeyManager } from '../../identity-core/pki/key-manager.js';
import { makeRunDir } from '../support/run-dir.js';

describe('key managers', () => {
  const run = makeRunDir('sdkm-');
  afterAll(() => run.remove());

  it('keeps disk keys in 0600 files that a new manager finds again', async () => {
    const dir = join(run.dir, 'keys');
    const key = await new DiskKeyManager(dir).generateKey('x509-ca-1');
    expect(statSync(join(dir, 'x509-ca-1.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const again = await new DiskKeyManager(dir).getKey('x509-ca-1');
    expect(createPublicKey(again!).export({ format: 'jwk' })).toEqual(
      createPublicKey(key).export({ format: 'jwk' }),
    );
    expect(await new DiskKeyManager(dir).getKey('missing')).toBeUndefined();
  });

  it('forgets memory keys with the manager and refuses ids that could escape the directory', async () => {
    const memory = new MemoryKeyManager();
    await memory.generateKey('a');
    expect(await memory.getKey('a')).toBeDefined();
    expect(await new MemoryKeyManager().getKey('a')).toBeUndefined();
    await expect(new DiskKeyManager(run.dir).generateKey('../escape')).rejects.toThrow(/invalid key id/);
  });
});
