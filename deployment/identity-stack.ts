import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { renderAgentConfig, renderServerConfig, type DatabaseChoice } from './identity-configs.js';
import { startProcess, type ManagedProcess } from './managed-process.js';
import { packageRoot, programFor, type Implementation } from './package-root.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TelemetryPorts {
  serverMetricsPort: number;
  serverHealthPort: number;
  agentMetricsPort: number;
  agentHealthPort: number;
}

export interface IdentityStackOptions {
  /** Directory for configs, sockets, data and logs; keep it short (Unix socket paths are limited to 107 bytes). */
  runDir: string;
  trustDomain?: string;
  /** Defaults to the embedded PGlite datastore in the run directory (one server only). */
  database?: DatabaseChoice;
  /** How many tspire-server processes share the datastore (HA); more than one needs PostgreSQL. */
  servers?: number;
  /** Which SPIRE runs: the bundled TypeScript one (default) or real SPIRE from tools/bin. */
  implementation?: Implementation;
  /** Put an L4 TCP load balancer in front of the servers; the agent dials it. */
  loadBalancer?: boolean;
  caTtl?: string;
  x509SvidTtl?: string;
  jwtSvidTtl?: string;
  syncInterval?: string;
  logLevel?: string;
  /** How often the server checks its CA rotation thresholds (SPIRE: 10 s). */
  caRotationCheckInterval?: string;
  /** Loopback ports for /metrics and the health listener of the first server and the agent; off when absent. */
  telemetry?: TelemetryPorts;
}

/** Runs a command to completion; never throws on a non-zero exit, which callers check. */
export function runCommand(command: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms\n${describe()}`);
}

/**
 * One trust domain on this host: tspire-server processes (one, or several sharing a PostgreSQL
 * datastore, optionally behind a TCP load balancer) and a tspire-agent, each a detached process
 * configured by an HCL file in the run directory and driven through its CLI.
 */
export class IdentityStack {
  readonly trustDomain: string;
  readonly serverSockets: string[];
  readonly serverConfigPaths: string[];
  readonly agentSocket: string;
  readonly agentConfigPath: string;
  readonly bundlePath: string;
  readonly servers: (ManagedProcess | undefined)[];
  balancer: ManagedProcess | undefined;
  agent: ManagedProcess | undefined;

  private constructor(
    readonly options: IdentityStackOptions & {
      trustDomain: string;
      database: DatabaseChoice;
      servers: number;
    },
    readonly serverPorts: number[],
    /** The port agents dial: the balancer's when there is one, else the first server's. */
    readonly agentFacingPort: number,
  ) {
    const dir = options.runDir;
    this.trustDomain = options.trustDomain;
    this.serverSockets = serverPorts.map((_, i) => join(dir, i === 0 ? 'server.sock' : `server-${i}.sock`));
    this.serverConfigPaths = serverPorts.map((_, i) =>
      join(dir, i === 0 ? 'server.conf' : `server-${i}.conf`),
    );
    this.servers = serverPorts.map(() => undefined);
    this.agentSocket = join(dir, 'agent.sock');
    this.agentConfigPath = join(dir, 'agent.conf');
    this.bundlePath = join(dir, 'bootstrap-bundle.pem');
  }

  get implementation(): Implementation {
    return this.options.implementation ?? 'tspire';
  }

  /** The first server's admin socket, where CLI commands go by default. */
  get serverSocket(): string {
    return this.serverSockets[0]!;
  }

  get serverPort(): number {
    return this.serverPorts[0]!;
  }

  get server(): ManagedProcess | undefined {
    return this.servers[0];
  }

  static async create(options: IdentityStackOptions): Promise<IdentityStack> {
    const servers = options.servers ?? 1;
    const implementation = options.implementation ?? 'tspire';
    if (implementation === 'spire' && !options.database) {
      // tools/install.sh builds SPIRE without cgo, which leaves out its sqlite3 datastore.
      throw new Error(
        'real SPIRE needs a database here: give a PostgreSQL one (the pinned build has no sqlite3)',
      );
    }
    const database: DatabaseChoice = options.database ?? {
      type: 'pglite',
      directory: join(options.runDir, 'datastore'),
    };
    if (servers > 1 && database.type !== 'postgres') {
      throw new Error(
        'several servers need a shared datastore: give a PostgreSQL database (PGlite serves one process)',
      );
    }
    mkdirSync(options.runDir, { recursive: true });
    const serverPorts = await Promise.all(Array.from({ length: servers }, () => freePort()));
    const agentFacingPort = options.loadBalancer ? await freePort() : serverPorts[0]!;
    const stack = new IdentityStack(
      { ...options, trustDomain: options.trustDomain ?? 'example.org', database, servers },
      serverPorts,
      agentFacingPort,
    );
    const common = {
      trustDomain: stack.trustDomain,
      database,
      caTtl: options.caTtl ?? '24h',
      x509SvidTtl: options.x509SvidTtl ?? '1h',
      jwtSvidTtl: options.jwtSvidTtl ?? '5m',
      logLevel: options.logLevel ?? 'INFO',
      ...(options.caRotationCheckInterval
        ? { caRotationCheckInterval: options.caRotationCheckInterval }
        : {}),
    };
    serverPorts.forEach((port, i) => {
      writeFileSync(
        stack.serverConfigPaths[i]!,
        renderServerConfig({
          ...common,
          bindPort: port,
          socketPath: stack.serverSockets[i]!,
          dataDir: join(options.runDir, i === 0 ? 'server-data' : `server-${i}-data`),
          ...(options.telemetry && i === 0
            ? {
                metricsPort: options.telemetry.serverMetricsPort,
                healthPort: options.telemetry.serverHealthPort,
              }
            : {}),
        }),
      );
    });
    writeFileSync(
      stack.agentConfigPath,
      renderAgentConfig({
        trustDomain: stack.trustDomain,
        serverPort: agentFacingPort,
        socketPath: stack.agentSocket,
        dataDir: join(options.runDir, 'agent-data'),
        trustBundlePath: stack.bundlePath,
        syncInterval: options.syncInterval ?? '5s',
        logLevel: options.logLevel ?? 'INFO',
        ...(options.telemetry
          ? { metricsPort: options.telemetry.agentMetricsPort, healthPort: options.telemetry.agentHealthPort }
          : {}),
      }),
    );
    return stack;
  }

  serverCli(args: string[], server = 0): Promise<CliResult> {
    const program = programFor(this.implementation, 'server');
    return runCommand(program.command, [
      ...program.prefix,
      ...args,
      '-socketPath',
      this.serverSockets[server]!,
    ]);
  }

  agentCli(args: string[]): Promise<CliResult> {
    const program = programFor(this.implementation, 'agent');
    return runCommand(program.command, [...program.prefix, ...args, '-socketPath', this.agentSocket]);
  }

  /** Starts one server, or all of them in order (the first creates the schema and the bundle). */
  async startServer(index?: number, timeoutMs = 60_000): Promise<void> {
    const indexes = index === undefined ? this.serverPorts.map((_, i) => i) : [index];
    for (const i of indexes) {
      const program = programFor(this.implementation, 'server');
      const name = i === 0 ? program.name : `${program.name}-${i}`;
      const server = startProcess(this.options.runDir, name, program.command, [
        ...program.prefix,
        'run',
        '-config',
        this.serverConfigPaths[i]!,
      ]);
      this.servers[i] = server;
      await waitFor(
        name,
        async () => {
          if (!server.isRunning()) throw new Error(`${name} exited during start:\n${server.log()}`);
          return existsSync(this.serverSockets[i]!) && (await this.serverCli(['healthcheck'], i)).code === 0;
        },
        timeoutMs,
        () => server.log(),
      );
    }
    if (this.options.loadBalancer && !this.balancer?.isRunning()) await this.startBalancer();
  }

  /** Starts (or restarts) the TCP load balancer in front of every server. */
  async startBalancer(timeoutMs = 30_000): Promise<void> {
    const script = join(packageRoot(), 'dist', 'deployment', 'tcp-balancer-main.js');
    const args = [script, '--listen', `127.0.0.1:${this.agentFacingPort}`, '--health-interval-ms', '500'];
    for (const port of this.serverPorts) args.push('--backend', `127.0.0.1:${port}`);
    const balancer = startProcess(this.options.runDir, 'tcp-balancer', process.execPath, args);
    this.balancer = balancer;
    await waitFor(
      'tcp-balancer',
      async () => {
        if (!balancer.isRunning()) throw new Error(`tcp-balancer exited during start:\n${balancer.log()}`);
        return balancer.log().includes('"listening"');
      },
      timeoutMs,
      () => balancer.log(),
    );
  }

  /** Writes the server's current bundle for the agent to bootstrap from. */
  async writeBootstrapBundle(): Promise<void> {
    const result = await this.serverCli(['bundle', 'show', '-format', 'pem']);
    if (result.code !== 0) throw new Error(`bundle show failed: ${result.stderr}`);
    writeFileSync(this.bundlePath, result.stdout);
  }

  async generateToken(spiffeId: string): Promise<string> {
    const result = await this.serverCli(['token', 'generate', '-spiffeID', spiffeId]);
    const token = /Token: (\S+)/.exec(result.stdout)?.[1];
    if (result.code !== 0 || !token)
      throw new Error(`token generate failed: ${result.stderr || result.stdout}`);
    return token;
  }

  async startAgent(joinToken: string | undefined, timeoutMs = 60_000): Promise<void> {
    if (!existsSync(this.bundlePath)) await this.writeBootstrapBundle();
    const program = programFor(this.implementation, 'agent');
    const args = [...program.prefix, 'run', '-config', this.agentConfigPath];
    if (joinToken) args.push('-joinToken', joinToken);
    this.agent = startProcess(this.options.runDir, program.name, program.command, args);
    const agent = this.agent;
    await waitFor(
      program.name,
      async () => {
        if (!agent.isRunning()) throw new Error(`${program.name} exited during start:\n${agent.log()}`);
        return existsSync(this.agentSocket);
      },
      timeoutMs,
      () => agent.log(),
    );
  }

  async stop(): Promise<void> {
    await this.agent?.stop();
    await this.balancer?.stop();
    for (const server of this.servers) await server?.stop();
  }
}
