import net from 'node:net';

export interface Backend {
  host: string;
  port: number;
}

export interface BalancerOptions {
  listen: Backend;
  backends: Backend[];
  healthCheckIntervalMs: number;
  /** Connect timeout for health checks and for forwarding. */
  connectTimeoutMs: number;
  log(event: string, fields: Record<string, unknown>): void;
}

interface BackendState extends Backend {
  healthy: boolean;
  connections: number;
}

const label = (b: Backend) => `${b.host}:${b.port}`;

function connect(backend: Backend, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // As L4 balancers do (HAProxy, Envoy): bytes go on at once, not held for the peer's delayed ACK.
    const socket = net.connect({ port: backend.port, host: backend.host, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * An L4 TCP load balancer: round-robin over the backends that pass a TCP health check, bytes piped
 * untouched (TLS stays end to end between agent and server). A backend that refuses a forwarded
 * connection is marked down at once and the next healthy one is tried.
 */
export class TcpBalancer {
  private readonly backends: BackendState[];
  private next = 0;
  private server: net.Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly options: BalancerOptions) {
    this.backends = options.backends.map((b) => ({ ...b, healthy: true, connections: 0 }));
  }

  get status(): { backend: string; healthy: boolean; connections: number }[] {
    return this.backends.map((b) => ({ backend: label(b), healthy: b.healthy, connections: b.connections }));
  }

  async start(): Promise<number> {
    await this.checkHealth();
    this.timer = setInterval(() => void this.checkHealth(), this.options.healthCheckIntervalMs);
    this.server = net.createServer({ noDelay: true }, (client) => void this.forward(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.options.listen.port, this.options.listen.host, () => resolve());
    });
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : this.options.listen.port;
  }

  private setHealth(backend: BackendState, healthy: boolean, reason?: string): void {
    if (backend.healthy === healthy) return;
    backend.healthy = healthy;
    this.options.log(healthy ? 'backend up' : 'backend down', {
      backend: label(backend),
      ...(reason ? { reason } : {}),
    });
  }

  private async checkHealth(): Promise<void> {
    await Promise.all(
      this.backends.map(async (backend) => {
        try {
          (await connect(backend, this.options.connectTimeoutMs)).destroy();
          this.setHealth(backend, true);
        } catch (error) {
          this.setHealth(backend, false, (error as Error).message);
        }
      }),
    );
  }

  private pick(exclude: Set<BackendState>): BackendState | undefined {
    for (let i = 0; i < this.backends.length; i++) {
      const candidate = this.backends[(this.next + i) % this.backends.length]!;
      if (candidate.healthy && !exclude.has(candidate)) {
        this.next = (this.next + i + 1) % this.backends.length;
        return candidate;
      }
    }
    return undefined;
  }

  private async forward(client: net.Socket): Promise<void> {
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    client.on('error', () => undefined);
    client.pause();
    const tried = new Set<BackendState>();
    for (let backend = this.pick(tried); backend; backend = this.pick(tried)) {
      tried.add(backend);
      let upstream: net.Socket;
      try {
        upstream = await connect(backend, this.options.connectTimeoutMs);
      } catch (error) {
        this.setHealth(backend, false, (error as Error).message);
        continue;
      }
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      const chosen = backend;
      chosen.connections++;
      this.sockets.add(upstream);
      upstream.once('close', () => {
        chosen.connections--;
        this.sockets.delete(upstream);
        client.destroy();
      });
      client.once('close', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      return;
    }
    this.options.log('no healthy backend', { client: `${client.remoteAddress}:${client.remotePort}` });
    client.destroy();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export function parseHostPort(text: string): Backend {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new Error(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: match[1]!, port };
}
