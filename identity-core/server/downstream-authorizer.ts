import type { TrustBundle } from '../spiffe/trust-bundle.js';
import { verifyX509Svid } from '../spiffe/x509-svid.js';
import { RpcError } from '../transport/rpc-error.js';
import type { PeerInfo } from '../transport/peer-tagged-server.js';

/**
 * Decides whether the caller is a downstream server, as SPIRE does: an X509-SVID of this trust domain
 * that verifies against the bundle (through any intermediates it presents) and whose SPIFFE ID is that
 * of a registration entry marked `downstream`. The SVID is verified once per connection, as of its TLS
 * handshake, as SPIRE's server verifies it in the handshake: real SPIRE's UpstreamAuthority plugin keeps
 * one connection and presents the SVID it renewed only to new connections, so the connection stays
 * authenticated past that SVID's expiry and past the revocation of the root it chained to.
 */
export class DownstreamAuthorizer {
  constructor(
    private readonly trustDomain: string,
    private readonly isDownstream: (spiffeId: string) => boolean,
    private readonly bundle: () => Promise<TrustBundle>,
  ) {}

  /** Each connection's caller, once verified. */
  private readonly verified = new WeakMap<PeerInfo, string>();

  async authorize(peer: PeerInfo | undefined, now = Date.now()): Promise<string> {
    if (!peer || peer.kind !== 'tls' || peer.certificateChain.length === 0) {
      throw RpcError.unauthenticated('caller is not authenticated: no client certificate presented');
    }
    const callerId = this.verified.get(peer) ?? (await this.verify(peer, now));
    if (!this.isDownstream(callerId))
      throw RpcError.permissionDenied(`caller "${callerId}" is not a downstream workload`);
    return callerId;
  }

  private async verify(peer: PeerInfo & { kind: 'tls' }, now: number): Promise<string> {
    const bundle = await this.bundle();
    let callerId: string;
    try {
      const verified = verifyX509Svid(
        peer.certificateChain,
        bundle.x509Authorities.map((a) => a.der),
        peer.handshakeAt ?? now,
      );
      if (verified.spiffeId.trustDomain !== this.trustDomain)
        throw new Error(`${verified.spiffeId.toString()} is not of trust domain ${this.trustDomain}`);
      callerId = verified.spiffeId.toString();
    } catch (error) {
      throw RpcError.unauthenticated(`caller SVID is not valid: ${(error as Error).message}`);
    }
    this.verified.set(peer, callerId);
    return callerId;
  }
}
