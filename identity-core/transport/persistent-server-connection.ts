import * as grpc from '@grpc/grpc-js';
import { toPem } from '../spiffe/pem.js';
import {
  SERVER_CHANNEL_OPTIONS,
  serverClients,
  serverIdentityCheck,
  type ClientIdentity,
  type ServerClients,
} from './server-connection.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * The latest X509-SVID and roots, handed to grpc-js as a certificate provider: each new TLS handshake
 * of the channel reads them, as go-spiffe's X509Source feeds SPIRE's TLS config.
 */
class SvidCertificateProvider implements grpc.experimental.CertificateProvider {
  private ca: grpc.experimental.CaCertificateUpdate | undefined;
  private identity: grpc.experimental.IdentityCertificateUpdate | undefined;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  update(roots: Buffer[], identity: ClientIdentity): void {
    this.ca = { caCertificate: Buffer.from(roots.map((der) => toPem(der)).join('')) };
    this.identity = {
      certificate: Buffer.from(identity.certificateChain.map((der) => toPem(der)).join('')),
      privateKey: Buffer.from(identity.privateKeyPem),
    };
    for (const listener of this.caListeners) listener(this.ca);
    for (const listener of this.identityListeners) listener(this.identity);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    if (this.ca) listener(this.ca);
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    if (this.identity) listener(this.identity);
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/**
 * One gRPC channel to a SPIRE server kept for the client's life, as SPIRE's UpstreamAuthority "spire"
 * plugin keeps its connection: a new SVID or bundle changes what the next handshake presents, not the
 * channel. So after the server goes away the channel reconnects on gRPC's connection backoff, and a
 * call made while it waits fails at once with UNAVAILABLE, however long ago the server came back.
 * The backoff has grpc-go's defaults (1 s, ×1.6, ±20 %, at most 120 s), but grpc-js carries each
 * delay's jitter into the next where grpc-go draws it afresh, so its delays wander further.
 */
export class PersistentServerConnection {
  private readonly provider = new SvidCertificateProvider();
  private current: { channel: grpc.Channel; clients: ServerClients } | undefined;
  private key = '';

  constructor(
    private readonly address: string,
    private readonly trustDomain: string,
  ) {}

  /**
   * The SVID and roots the next handshake presents and verifies against. A live connection keeps the
   * SVID it was opened with: SPIRE's server ends every connection after 3 minutes (MaxConnectionAge)
   * and checks a downstream's SVID at the handshake only, while the bundled server keeps connections
   * and checks the SVID's expiry at every call. So a new SVID opens a new channel, unless the channel
   * is connecting or backing off: its next attempt presents the new SVID and the backoff goes on.
   */
  update(roots: Buffer[], identity: ClientIdentity): void {
    const key = JSON.stringify([
      roots.map((r) => r.toString('base64')),
      identity.certificateChain.map((c) => c.toString('base64')),
    ]);
    this.provider.update(roots, identity);
    if (key === this.key) return;
    this.key = key;
    const state = this.current?.channel.getConnectivityState(false);
    if (state === grpc.connectivityState.READY || state === grpc.connectivityState.IDLE) this.close();
  }

  clients(): ServerClients {
    if (this.current) return this.current.clients;
    const credentials = grpc.experimental.createCertificateProviderChannelCredentials(
      this.provider,
      this.provider,
      { checkServerIdentity: serverIdentityCheck(this.trustDomain) },
    );
    const channel = new grpc.Channel(this.address, credentials, SERVER_CHANNEL_OPTIONS);
    this.current = { channel, clients: serverClients(this.address, credentials, channel) };
    return this.current.clients;
  }

  /** Drops the channel and its backoff: the next call dials afresh. */
  close(): void {
    this.current?.channel.close();
    this.current = undefined;
  }
}
