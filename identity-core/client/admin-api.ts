/** Clients for tspire-server's admin API on its Unix socket, as `spire-server` subcommands use it. */
import * as grpc from '@grpc/grpc-js';
import {
  AgentClientCtor,
  BundleClientCtor,
  EntryClientCtor,
  HealthClientCtor,
  LocalAuthorityClientCtor,
  type AgentClient,
  type BundleClient,
  type EntryClient,
  type HealthClient,
  type LocalAuthorityClient,
} from '../proto/services.js';
import { unixTarget } from './grpc-call.js';

export const DEFAULT_SERVER_SOCKET_PATH = '/tmp/spire-server/private/api.sock';

export class AdminApi {
  private readonly target: string;
  private readonly clients: grpc.Client[] = [];

  constructor(socketPath: string) {
    this.target = unixTarget(socketPath);
  }

  private open<Client extends grpc.Client>(
    Ctor: new (address: string, credentials: grpc.ChannelCredentials) => Client,
  ): Client {
    // The admin socket is protected by file permissions, not TLS, as in SPIRE.
    const client = new Ctor(this.target, grpc.credentials.createInsecure());
    this.clients.push(client);
    return client;
  }

  entry(): EntryClient {
    return this.open(EntryClientCtor);
  }

  agent(): AgentClient {
    return this.open(AgentClientCtor);
  }

  bundle(): BundleClient {
    return this.open(BundleClientCtor);
  }

  localAuthority(): LocalAuthorityClient {
    return this.open(LocalAuthorityClientCtor);
  }

  health(): HealthClient {
    return this.open(HealthClientCtor);
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}

/** Runs `use` with a fresh set of clients and closes them afterwards. */
export async function withAdminApi<T>(socketPath: string, use: (api: AdminApi) => Promise<T>): Promise<T> {
  const api = new AdminApi(socketPath);
  try {
    return await use(api);
  } finally {
    api.close();
  }
}
