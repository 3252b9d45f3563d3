import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import {
  AgentClientCtor,
  BundleClientCtor,
  EntryClientCtor,
  SvidClientCtor,
  type AgentClient,
  type BundleClient,
  type EntryClient,
  type SVIDClient,
} from '../proto/services.js';
import { toPem } from '../spiffe/pem.js';

export interface ServerClients {
  agent: AgentClient;
  entry: EntryClient;
  svid: SVIDClient;
  bundle: BundleClient;
}

export interface ClientIdentity {
  certificateChain: Buffer[];
  privateKeyPem: string;
}

/** Accepts only a server certificate that carries spiffe://<trust domain>/spire/server. */
export function serverIdentityCheck(
  trustDomain: string,
): (host: string, cert: PeerCertificate) => Error | undefined {
  const expected = `URI:spiffe://${trustDomain}/spire/server`;
  return (_host, cert) =>
    (cert.subjectaltname ?? '').split(', ').includes(expected)
      ? undefined
      : new Error(`server certificate does not carry ${expected}`);
}

/** The server is verified by its SPIFFE ID, not a host name; a fixed name keeps TLS from using an IP as SNI. */
export const SERVER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.ssl_target_name_override': 'spire-server',
  'grpc.default_authority': 'spire-server',
};

/** The four server API clients over one shared channel. */
export function serverClients(
  address: string,
  credentials: grpc.ChannelCredentials,
  channel: grpc.Channel,
): ServerClients {
  const shared = { channelOverride: channel };
  return {
    agent: new AgentClientCtor(address, credentials, shared),
    entry: new EntryClientCtor(address, credentials, shared),
    svid: new SvidClientCtor(address, credentials, shared),
    bundle: new BundleClientCtor(address, credentials, shared),
  };
}

/**
 * The agent's gRPC channel to the server: mTLS with the agent SVID, the server verified against the
 * current bundle and required to present spiffe://<td>/spire/server. A new channel is made whenever
 * the agent SVID or the bundle changes, since grpc-js credentials are fixed per channel.
 */
export class ServerConnection {
  private current: { key: string; channel: grpc.Channel; clients: ServerClients } | undefined;

  constructor(
    private readonly address: string,
    private readonly trustDomain: string,
  ) {}

  /** Clients over a channel for this identity and these roots; `identity` undefined for attestation. */
  clients(roots: Buffer[], identity: ClientIdentity | undefined): ServerClients {
    const key = JSON.stringify([
      roots.map((r) => r.toString('base64')),
      identity?.certificateChain.map((c) => c.toString('base64')),
    ]);
    if (this.current?.key === key) return this.current.clients;
    this.close();
    const credentials = grpc.credentials.createSsl(
      Buffer.from(roots.map((der) => toPem(der)).join('')),
      identity ? Buffer.from(identity.privateKeyPem) : null,
      identity ? Buffer.from(identity.certificateChain.map((der) => toPem(der)).join('')) : null,
      { checkServerIdentity: serverIdentityCheck(this.trustDomain) },
    );
    const channel = new grpc.Channel(this.address, credentials, SERVER_CHANNEL_OPTIONS);
    const clients = serverClients(this.address, credentials, channel);
    this.current = { key, channel, clients };
    return clients;
  }

  /**
   * Drops the channel after a failed call, so the next call dials afresh rather than failing fast on
   * a channel still backing off from an outage (SPIRE's agent releases its connection on any error).
   * With `used`, only when those clients are still the current ones: a late failure leaves a newer
   * channel alone.
   */
  reset(used?: ServerClients): void {
    if (used && this.current?.clients !== used) return;
    this.close();
  }

  close(): void {
    this.current?.channel.close();
    this.current = undefined;
  }
}

/** A deadline for one call to the server, so a hung server turns into a failed sync instead of a stuck agent. */
export function deadline(ms = 10_000): { deadline: Date } {
  return { deadline: new Date(Date.now() + ms) };
}

/** One unary call to the server with a deadline: `call<Res>((options, done) => client.Method(request, options, done))`. */
export function call<Res>(
  invoke: (
    options: grpc.CallOptions,
    done: (error: grpc.ServiceError | null, response?: Res) => void,
  ) => unknown,
  timeoutMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(deadline(timeoutMs), (error, response) => (error ? reject(error) : resolve(response as Res)));
  });
}
