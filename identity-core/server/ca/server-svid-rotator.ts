import { generateKeyPairSync } from 'node:crypto';
import type { Logger } from 'pino';
import { renewalTime } from '../../agent/renewal-policy.js';
import type { TlsIdentity } from '../../transport/peer-tagged-server.js';
import type { CaSigner, SignedX509Svid } from './signer.js';

export interface ServerSvidRotatorOptions {
  signer: CaSigner;
  trustDomain: string;
  ttlSeconds: number;
  checkIntervalMs: number;
  logger: Logger;
}

/**
 * The server's own X509-SVID (spiffe://<trust domain>/spire/server), which its TLS listener presents:
 * minted under the active X.509 CA, renewed at the same point of its life as an agent's, and at once
 * whenever a new X.509 CA is activated, as SPIRE's server SVID rotator.
 */
export class ServerSvidRotator {
  private identity: (TlsIdentity & { renewAt: number }) | undefined;
  private readonly listeners: ((identity: TlsIdentity) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ServerSvidRotatorOptions) {}

  start(): void {
    this.rotate();
    this.timer = setInterval(() => {
      if (this.identity && Date.now() >= this.identity.renewAt) this.rotate();
    }, this.options.checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Mints a new server SVID under the active CA and hands it to every listener. */
  rotate(): void {
    if (!this.options.signer.ready) return;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let signed: SignedX509Svid;
    try {
      signed = this.options.signer.signX509Svid({
        spiffeId: `spiffe://${this.options.trustDomain}/spire/server`,
        publicKeySpki: publicKey.export({ format: 'der', type: 'spki' }),
        ttlSeconds: this.options.ttlSeconds,
      });
    } catch (error) {
      this.options.logger.error({ err: (error as Error).message }, 'Could not rotate server SVID');
      return;
    }
    this.identity = {
      certificateChain: signed.certificateChain,
      privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      renewAt: renewalTime(signed.notBefore * 1000, signed.notAfter * 1000),
    };
    for (const listener of this.listeners) listener(this.tlsIdentity());
  }

  tlsIdentity(): TlsIdentity {
    if (!this.identity) throw new Error('server SVID not minted yet');
    return { certificateChain: this.identity.certificateChain, privateKeyPem: this.identity.privateKeyPem };
  }

  onChange(listener: (identity: TlsIdentity) => void): void {
    this.listeners.push(listener);
  }
}
