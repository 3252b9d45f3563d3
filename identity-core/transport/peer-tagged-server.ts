import * as grpc from '@grpc/grpc-js';
import type http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { toPem } from '../spiffe/pem.js';
import { connectionLimits, grpcServerOptionsFor, type ConnectionLimits } from './connection-limits.js';
import { GuardedConnection } from './guarded-connection.js';
import { peerCredentialsOf, type PeerCredentials } from './peer-credentials.js';
import { unixSocketPathTooLong } from './unix-socket-path.js';

export type PeerInfo =
  | {
      kind: 'tls';
      /** Leaf first, as the peer presented it; empty when it sent no certificate. */ certificateChain: Buffer[];
      /** When (ms) the TLS handshake that presented it completed. */
      handshakeAt?: number;
    }
  | { kind: 'unix'; credentials: PeerCredentials };

export interface TlsIdentity {
  certificateChain: Buffer[];
  privateKeyPem: string;
}

/** Anything a grpc-js handler receives: every call type has getPeer(). */
interface CallLike {
  getPeer(): string;
}

export interface PeerTaggedServerOptions {
  /** grpc-js options (message sizes…); the connection limits' own grpc-js options are added to them. */
  grpc?: grpc.ServerOptions;
  /** Overrides of DEFAULT_CONNECTION_LIMITS (tests shorten the timeouts). */
  limits?: Partial<ConnectionLimits>;
  /** Told why, each time a connection is closed for breaking the limits or refused by `admitTls`. */
  onRefused?: (peer: PeerInfo, reason: string) => void;
  /**
   * Asked once a TLS handshake is done, before the connection is served: a reason closes it. SPIRE's
   * server checks a presented certificate against the bundle read from its datastore during the
   * handshake, so a server that cannot read its bundle refuses the connection rather than a call.
   */
  admitTls?: (peer: PeerInfo) => Promise<string | undefined>;
}

const TAG_PREFIX = 'peer-';

/**
 * The HTTP/2 server grpc-js made for our connection injector. Guarded connections reach nghttp2
 * through a JS stream wrapper whose address cannot be set from outside, so the tag is attached to
 * each session as it starts; grpc-js does not expose that server, hence this one private lookup.
 */
function http2ServerBehind(grpcServer: grpc.Server): http2.Http2Server {
  const servers = (grpcServer as unknown as { http2Servers?: unknown }).http2Servers;
  const server = servers instanceof Map ? [...(servers as Map<unknown, unknown>).keys()].at(-1) : undefined;
  if (!(server instanceof net.Server))
    throw new Error(
      '@grpc/grpc-js no longer keeps its HTTP/2 servers in http2Servers: peer tagging needs updating',
    );
  return server as http2.Http2Server;
}

function presentedChain(socket: tls.TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * A grpc-js server whose listeners are ours: each accepted connection is labelled in place of its
 * remote address, so `peerOf(call)` finds the certificate chain or kernel credentials behind a call.
 * Client certificates are requested but not enforced at the TLS layer: AttestAgent must work without
 * one, and authorization checks the chain against the current bundle at call time. Every connection
 * passes through a GuardedConnection, which with grpc-js's own options enforces the connection limits.
 */
export class PeerTaggedServer {
  readonly grpcServer: grpc.Server;
  readonly limits: ConnectionLimits;
  private readonly injector: ReturnType<grpc.Server['createConnectionInjector']>;
  private readonly peers = new Map<string, PeerInfo>();
  private readonly listeners: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private tlsServer: tls.Server | undefined;
  private nextId = 0;
  /** The tag of the connection being injected: grpc-js starts its HTTP/2 session synchronously. */
  private injecting: string | undefined;
  private readonly onRefused: (peer: PeerInfo, reason: string) => void;
  private readonly admitTls: ((peer: PeerInfo) => Promise<string | undefined>) | undefined;

  constructor(options: PeerTaggedServerOptions = {}) {
    this.limits = connectionLimits(options.limits);
    this.onRefused = options.onRefused ?? (() => undefined);
    this.admitTls = options.admitTls;
    this.grpcServer = new grpc.Server({ ...options.grpc, ...grpcServerOptionsFor(this.limits) });
    this.injector = this.grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    http2ServerBehind(this.grpcServer).prependListener('session', (session) => {
      const tag = this.injecting;
      this.injecting = undefined;
      // The session's socket is Node's stream wrapper around the GuardedConnection; grpc-js's
      // getPeer() reads its remoteAddress, which such a wrapper takes from _peername. An untagged
      // session is one peerOf() does not know, and its calls are refused.
      if (tag !== undefined)
        (session.socket as unknown as { _peername: { address: string } })._peername = { address: tag };
    });
  }

  peerOf(call: CallLike): PeerInfo | undefined {
    const peer = call.getPeer();
    const tag = peer.startsWith(TAG_PREFIX) ? peer.split(':')[0]! : peer;
    return this.peers.get(tag);
  }

  get connectionCount(): number {
    return this.peers.size;
  }

  /** Remembers a socket until it closes, so that close() can end it. */
  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Serves a TLS connection once `admitTls` lets it; what the client sends meanwhile stays buffered. */
  private admit(socket: tls.TLSSocket, info: PeerInfo): void {
    if (!this.admitTls) return this.adopt(socket, info);
    this.admitTls(info).then(
      (refusal) => {
        if (socket.destroyed) return;
        if (refusal === undefined) return this.adopt(socket, info);
        this.onRefused(info, refusal);
        socket.destroy();
      },
      (error: Error) => {
        this.onRefused(info, error.message);
        socket.destroy();
      },
    );
  }

  private adopt(socket: net.Socket, info: PeerInfo): void {
    const tag = `${TAG_PREFIX}${++this.nextId}`;
    this.peers.set(tag, info);
    this.track(socket);
    socket.once('close', () => this.peers.delete(tag));
    this.injecting = tag;
    this.injector.injectConnection(
      new GuardedConnection(socket, this.limits, (reason) => this.onRefused(info, reason)),
    );
    // Had no session started, the next one would carry this tag: refuse rather than mislabel.
    if (this.injecting !== undefined) {
      this.injecting = undefined;
      socket.destroy();
    }
  }

  /** Listens with TLS on host:port (0 picks a free port) and resolves with the bound port. */
  async listenTls(host: string, port: number, identity: TlsIdentity): Promise<number> {
    const server = tls.createServer(
      {
        ...this.secureContextOptions(identity),
        requestCert: true,
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
        handshakeTimeout: this.limits.handshakeTimeoutMs,
        // A gRPC response is several small writes (headers, message, trailers): with Nagle's algorithm
        // the later ones wait for the client's delayed ACK, about 40 ms a call. grpc-go disables it.
        noDelay: true,
      },
      (socket) =>
        this.admit(socket, {
          kind: 'tls',
          certificateChain: presentedChain(socket),
          handshakeAt: Date.now(),
        }),
    );
    // A client that fails the handshake, or does not finish it in time, must not take the server down;
    // Node only reports it, so the socket is closed here.
    server.on('tlsClientError', (_error, socket) => socket.destroy());
    // Still in its TLS handshake, a connection is only a TCP socket; close() must reach it too.
    server.on('connection', (socket: net.Socket) => this.track(socket));
    this.tlsServer = server;
    return this.listen(server, () => server.listen(port, host));
  }

  /** Replaces the certificate new handshakes present (server SVID rotation); open connections keep theirs. */
  setTlsIdentity(identity: TlsIdentity): void {
    this.tlsServer?.setSecureContext(this.secureContextOptions(identity));
  }

  /** Listens on a Unix socket; `mode` sets its permissions (the Workload API socket is world-writable, the admin one is not). */
  async listenUnix(path: string, mode: number): Promise<void> {
    const tooLong = unixSocketPathTooLong(path);
    if (tooLong) throw new Error(`socket_path: ${tooLong}`);
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) rmSync(path);
    const server = net.createServer((socket) => {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (fd === undefined || fd < 0) {
        socket.destroy();
        return;
      }
      this.adopt(socket, { kind: 'unix', credentials: peerCredentialsOf(fd) });
    });
    await this.listen(server, () => server.listen(path));
    chmodSync(path, mode);
  }

  private listen(server: net.Server, start: () => void): Promise<number> {
    this.listeners.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
      start();
    });
  }

  private secureContextOptions(identity: TlsIdentity): tls.SecureContextOptions {
    return { key: identity.privateKeyPem, cert: identity.certificateChain.map((der) => toPem(der)).join('') };
  }

  /** Stops accepting, closes every connection, and shuts the gRPC server down. */
  async close(): Promise<void> {
    // A listener's close callback waits for its connections to end: destroy them first, or open
    // Workload API streams would hold the process up until it is killed.
    const closed = Promise.all(
      this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.injector.destroy();
    await new Promise<void>((resolve) => this.grpcServer.tryShutdown(() => resolve()));
    this.grpcServer.forceShutdown();
  }
}
