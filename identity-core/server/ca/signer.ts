import type { KeyObject } from 'node:crypto';
import type { KeyManager } from '../../pki/key-manager.js';
import { X509SvidMinter } from '../../pki/svid-minter.js';
import { mintJwtSvid, type MintedJwtSvid } from '../../spiffe/jwt-svid.js';
import { RpcError } from '../../transport/rpc-error.js';
import type { JournalStore } from './journal-store.js';

export interface SignedX509Svid {
  /** Leaf first. */
  certificateChain: Buffer[];
  serial: bigint;
  /** Unix seconds. */
  notBefore: number;
  notAfter: number;
}

export interface X509SvidRequest {
  spiffeId: string;
  publicKeySpki: Buffer;
  ttlSeconds: number;
  dnsNames?: string[];
}

/**
 * Signing with the journal's active authorities: X509-SVIDs under the active X.509 CA and JWT-SVIDs
 * with the active JWT key. Loaded again whenever an authority is activated.
 */
export class CaSigner {
  private minter: X509SvidMinter | undefined;
  /** The active CA and any intermediates above it: what follows the leaf in every SVID chain. */
  private signingChain: Buffer[] = [];
  private jwtKey: { keyId: string; privateKey: KeyObject } | undefined;

  constructor(
    private readonly store: JournalStore,
    private readonly keyManager: KeyManager,
    /** A downstream's SVID chains carry its intermediates; a root CA's carry nothing above the leaf. */
    private readonly downstream: boolean,
  ) {}

  get ready(): boolean {
    return this.minter !== undefined;
  }

  /** Takes up the keys of the journal's active authorities. */
  async load(): Promise<void> {
    const x509 = this.store.journal.current('x509');
    const jwt = this.store.journal.current('jwt');
    if (x509) {
      const privateKey = await this.keyManager.getKey(x509.keyId);
      if (!privateKey) throw new Error(`key ${x509.keyId} of the active X.509 authority is missing`);
      this.minter = new X509SvidMinter({ der: Buffer.from(x509.material, 'base64'), privateKey });
      this.signingChain = [x509.material, ...(x509.upstreamChain ?? [])].map((c) => Buffer.from(c, 'base64'));
    }
    if (jwt) {
      const privateKey = await this.keyManager.getKey(jwt.keyId);
      if (!privateKey) throw new Error(`key ${jwt.keyId} of the active JWT authority is missing`);
      this.jwtKey = { keyId: jwt.keyId, privateKey };
    }
  }

  signX509Svid(request: X509SvidRequest): SignedX509Svid {
    if (!this.minter) throw RpcError.unavailable('server is initializing');
    const minted = this.minter.mint(request);
    return {
      certificateChain: [minted.der, ...(this.downstream ? this.signingChain : [])],
      serial: minted.serial,
      notBefore: minted.notBefore,
      notAfter: minted.notAfter,
    };
  }

  /** The active X.509 CA's certificate, key and the intermediates above it, to sign a downstream's CA. */
  async activeX509Ca(): Promise<{ der: Buffer; privateKey: KeyObject; chain: Buffer[] }> {
    const current = this.store.journal.current('x509');
    if (!this.minter || !current) throw RpcError.unavailable('server is initializing');
    const privateKey = await this.keyManager.getKey(current.keyId);
    if (!privateKey) throw RpcError.internal('the active X.509 CA key is missing');
    return { der: this.signingChain[0]!, privateKey, chain: this.signingChain };
  }

  async signJwtSvid(request: {
    spiffeId: string;
    audience: string[];
    ttlSeconds: number;
  }): Promise<MintedJwtSvid> {
    if (!this.jwtKey) throw RpcError.unavailable('server is initializing');
    const current = this.store.journal.current('jwt')!;
    const now = Math.floor(Date.now() / 1000);
    // A JWT-SVID never outlives the key that signed it.
    const ttlSeconds = Math.max(1, Math.min(request.ttlSeconds, current.notAfter - now));
    return mintJwtSvid({
      ...request,
      ttlSeconds,
      privateKey: this.jwtKey.privateKey,
      keyId: current.authorityId,
    });
  }
}
