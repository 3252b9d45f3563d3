import { createPrivateKey } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Bundle__Output } from '../../proto/gen/spire/api/types/Bundle.js';
import type { NewDownstreamX509CAResponse__Output } from '../../proto/gen/spire/api/server/svid/v1/NewDownstreamX509CAResponse.js';
import type { PublishJWTAuthorityResponse__Output } from '../../proto/gen/spire/api/server/bundle/v1/PublishJWTAuthorityResponse.js';
import type { X509SVIDResponse__Output } from '../../proto/gen/X509SVIDResponse.js';
import { bundleFromProto } from '../../proto/convert.js';
import { WorkloadClient, workloadMetadata } from '../../proto/services.js';
import { splitDerCertificates } from '../../spiffe/pem.js';
import type { JwtAuthority, TrustBundle } from '../../spiffe/trust-bundle.js';
import { PersistentServerConnection } from '../../transport/persistent-server-connection.js';
import { call, type ClientIdentity } from '../../transport/server-connection.js';

export interface UpstreamOptions {
  trustDomain: string;
  serverAddress: string;
  serverPort: number;
  /** The downstream server's own agent's Workload API socket. */
  workloadApiSocket: string;
  logger: Logger;
}

interface WorkloadIdentity {
  identity: ClientIdentity;
  roots: Buffer[];
}

/** How long to wait before opening the Workload API stream again after it ended. */
const REOPEN_MS = 1000;
const CALL_TIMEOUT_MS = 10_000;
/** SPIRE's CA manager gives the publication of a JWT key upstream 5 s. */
const PUBLISH_JWT_KEY_TIMEOUT_MS = 5000;

/**
 * The UpstreamAuthority "spire" plugin's client side: the downstream server's X509-SVID, kept fresh
 * from its local agent's Workload API, authenticates it to the upstream server, which signs its
 * intermediate CA (svid.v1 NewDownstreamX509CA), serves its bundle, and takes its JWT keys. Once
 * started it keeps one channel, as the plugin does while the CA manager subscribes to the upstream
 * bundle: a failed call does not redial, gRPC's reconnect backoff does.
 */
export class UpstreamClient {
  private svid: WorkloadIdentity | undefined;
  private waiters: (() => void)[] = [];
  private stream: grpc.ClientReadableStream<X509SVIDResponse__Output> | undefined;
  private workload: InstanceType<typeof WorkloadClient> | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly connection: PersistentServerConnection;

  constructor(private readonly options: UpstreamOptions) {
    this.connection = new PersistentServerConnection(
      `${options.serverAddress}:${options.serverPort}`,
      options.trustDomain,
    );
  }

  start(): void {
    this.workload = new WorkloadClient(
      `unix://${this.options.workloadApiSocket}`,
      grpc.credentials.createInsecure(),
    );
    this.openStream();
  }

  stop(): void {
    this.stopped = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.stream?.cancel();
    this.workload?.close();
    this.connection.close();
  }

  /** Signs a CSR for this server's next intermediate CA; the chain comes back new CA first. */
  async mintX509Ca(
    csr: Buffer,
    preferredTtlSeconds: number,
  ): Promise<{ caChain: Buffer[]; upstreamRoots: Buffer[] }> {
    const clients = await this.clients();
    const response = await call<NewDownstreamX509CAResponse__Output>(
      (o, done) => clients.svid.NewDownstreamX509CA({ csr, preferredTtl: preferredTtlSeconds }, o, done),
      CALL_TIMEOUT_MS,
    );
    if (response.caCertChain.length === 0) throw new Error('upstream returned an empty CA chain');
    return {
      caChain: response.caCertChain.map((c) => Buffer.from(c)),
      upstreamRoots: response.x509Authorities.map((c) => Buffer.from(c)),
    };
  }

  async fetchBundle(): Promise<TrustBundle> {
    const clients = await this.clients();
    const bundle = await call<Bundle__Output>(
      (o, done) => clients.bundle.GetBundle({}, o, done),
      CALL_TIMEOUT_MS,
    );
    return bundleFromProto(bundle);
  }

  /** Publishes a JWT key upstream; the answer is every JWT authority the upstream bundle then holds. */
  async publishJwtAuthority(authority: JwtAuthority): Promise<JwtAuthority[]> {
    const clients = await this.clients();
    const response = await call<PublishJWTAuthorityResponse__Output>(
      (o, done) =>
        clients.bundle.PublishJWTAuthority(
          {
            jwtAuthority: {
              publicKey: authority.publicKeySpki,
              keyId: authority.keyId,
              expiresAt: authority.expiresAt,
              tainted: authority.tainted,
            },
          },
          o,
          done,
        ),
      PUBLISH_JWT_KEY_TIMEOUT_MS,
    );
    return response.jwtAuthorities.map((k) => ({
      keyId: k.keyId,
      publicKeySpki: Buffer.from(k.publicKey),
      expiresAt: Number(k.expiresAt),
      tainted: k.tainted,
    }));
  }

  /**
   * A fresh channel, for a downstream's first authorities only: until then SPIRE's plugin has no
   * bundle subscriber and opens a new connection for each call.
   */
  redial(): void {
    this.connection.close();
  }

  private async clients() {
    await this.currentSvid();
    return this.connection.clients();
  }

  /** The latest SVID from the Workload API, waiting (bounded) for the first one. */
  private async currentSvid(): Promise<WorkloadIdentity> {
    if (this.svid) return this.svid;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`no X509-SVID from the Workload API at ${this.options.workloadApiSocket} yet`)),
        CALL_TIMEOUT_MS,
      );
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.svid!;
  }

  private openStream(): void {
    if (this.stopped || !this.workload) return;
    const stream = this.workload.FetchX509SVID({}, workloadMetadata());
    this.stream = stream;
    stream.on('data', (response: X509SVIDResponse__Output) => {
      // As SPIRE's plugin does, the first (default) SVID is the server's identity.
      const svid = response.svids[0];
      if (!svid) return;
      try {
        const chain = splitDerCertificates(Buffer.from(svid.x509Svid));
        const privateKeyPem = createPrivateKey({
          key: Buffer.from(svid.x509SvidKey),
          format: 'der',
          type: 'pkcs8',
        })
          .export({ format: 'pem', type: 'pkcs8' })
          .toString();
        this.svid = {
          identity: { certificateChain: chain, privateKeyPem },
          roots: splitDerCertificates(Buffer.from(svid.bundle)),
        };
        this.connection.update(this.svid.roots, this.svid.identity);
        this.options.logger.debug({ spiffe_id: svid.spiffeId }, 'Received X509-SVID from the Workload API');
        for (const wake of this.waiters.splice(0)) wake();
      } catch (error) {
        this.options.logger.error({ err: (error as Error).message }, 'Malformed X509-SVID response');
      }
    });
    stream.on('error', (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED && !this.stopped)
        this.options.logger.warn(
          { err: error.details || error.message },
          'Workload API stream failed; retrying',
        );
      this.reopenAfterEnd(stream);
    });
    stream.on('end', () => this.reopenAfterEnd(stream));
  }

  /** A stream can report both an error and its end: reopen once, and only for the stream in use. */
  private reopenAfterEnd(stream: grpc.ClientReadableStream<X509SVIDResponse__Output>): void {
    if (this.stopped || this.stream !== stream) return;
    this.stream = undefined;
    this.reopenTimer = setTimeout(() => this.openStream(), REOPEN_MS);
  }
}
