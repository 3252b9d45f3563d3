import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import type { AuthorityKind, JournalEntry } from '../../pki/ca-journal.js';
import type { KeyManager } from '../../pki/key-manager.js';
import { createSelfSignedCa } from '../../pki/x509-ca.js';

/** An authority before the journal gives it a status. */
export type NewAuthority = Omit<JournalEntry, 'status' | 'tainted'>;

const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A JWT key id: 32 random letters and digits, as SPIRE's, so no id can be mistaken for a CLI flag. */
function newJwtKeyId(): string {
  let id = '';
  while (id.length < 32)
    for (const byte of randomBytes(48))
      // 62 × 4 = 248: bytes above are dropped so every character is equally likely.
      if (byte < 248 && id.length < 32) id += KEY_ID_ALPHABET[byte % 62];
  return id;
}

/** A fresh key in the key manager for a new authority of this kind. */
export async function newAuthorityKey(
  keyManager: KeyManager,
  kind: AuthorityKind,
): Promise<{ keyId: string; privateKey: KeyObject }> {
  const keyId = `${kind === 'x509' ? 'x509-ca' : 'jwt-key'}-${randomBytes(8).toString('hex')}`;
  return { keyId, privateKey: await keyManager.generateKey(keyId) };
}

/** A root server's next X.509 CA: self-signed, living caTtl seconds. */
export async function newSelfSignedX509Authority(options: {
  keyManager: KeyManager;
  trustDomain: string;
  caTtl: number;
}): Promise<NewAuthority> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const { keyId, privateKey } = await newAuthorityKey(options.keyManager, 'x509');
  const ca = await createSelfSignedCa({
    trustDomain: options.trustDomain,
    privateKey,
    ttlSeconds: options.caTtl,
  });
  return {
    authorityId: ca.authorityId,
    keyId,
    notBefore: ca.notBefore,
    notAfter: ca.notAfter,
    issuedAt,
    material: ca.der.toString('base64'),
  };
}

/** A new JWT signing key, living caTtl seconds from now. */
export async function newJwtAuthority(keyManager: KeyManager, caTtl: number): Promise<NewAuthority> {
  const now = Math.floor(Date.now() / 1000);
  const { keyId, privateKey } = await newAuthorityKey(keyManager, 'jwt');
  return {
    authorityId: newJwtKeyId(),
    keyId,
    notBefore: now,
    notAfter: now + caTtl,
    issuedAt: now,
    material: createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64'),
  };
}
