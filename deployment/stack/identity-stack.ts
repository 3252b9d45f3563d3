import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { freePort } from '../host/free-port.js';
import type {
  AgentKnobChoices,
  DatabaseChoice,
  NodeAttestorChoice,
  ServerConfigChoices,
  ServerKnobChoices,
} from '../implementation/spire-configs.js';
import type { ImplementationName, SpireImplementation } from '../implementation/implementation.js';
import { implementationFor } from '../implementation/implementation-for.js';
import type { ServerAdmin } from '../implementation/server-admin.js';
import { findProcess, startProcess, type ManagedProcess } from '../host/managed-process.js';
import { packageRoot } from '../host/package-root.js';
import { pollUntilDone } from '../host/poll.js';
import { authorityState, bundleAuthoritiesOf } from '../authority-rotation.js';
import { NodeCertificateAuthority } from './node-certificates.js';

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
  /** Defaults to the implementation's embedded datastore in the run directory (one server only). */
  database?: DatabaseChoice;
  /** How many server processes share the datastore (HA); more than one needs PostgreSQL. */
  servers?: number;
  /** Which SPIRE runs: the bundled TypeScript one (default) or real SPIRE from tools/bin. */
  implementation?: ImplementationName;
  /** Put an L4 TCP load balancer in front of the servers; the agent dials it. */
  loadBalancer?: boolean;
  caTtl?: string;
  x509SvidTtl?: string;
  jwtSvidTtl?: string;
  /** The agents' own SVID lifetime (default: the X509-SVID TTL, as in SPIRE). */
  agentTtl?: string;
  syncInterval?: string;
  logLevel?: string;
  /** How often the server checks its CA rotation thresholds (SPIRE: 10 s). */
  caRotationCheckInterval?: string;
  /** SPIRE's failure knobs for every server (staleness, entry cache reload) and every agent (rebootstrap). */
  serverKnobs?: ServerKnobChoices;
  /** SPIRE's server rate limits (benchmarks against real SPIRE turn them off); SPIRE's defaults when absent. */
  rateLimits?: ServerConfigChoices['rateLimits'];
  agentKnobs?: AgentKnobChoices;
  /** Loopback ports for /metrics and the health listener of the first server and the agent; off when absent. */
  telemetry?: TelemetryPorts;
  /** How many agent processes attach to these servers (each its own node); default 1. */
  agents?: number;
  /**
   * Opens the first agent's V8 inspector on this loopback port (tspire only), so that a test can
   * collect its garbage before reading its heap: nothing else forces V8 to, and a heap full of
   * garbage says nothing about what the agent still holds.
   */
  agentInspectorPort?: number;
  /**
   * Makes this stack a downstream (nested) one of another: its own "upstream agent" attaches to the
   * upstream stack's servers and serves this stack's servers their SVID (a `downstream` entry), with
   * which they obtain their intermediate CAs. That agent is an agent of the upstream's servers, so it
   * runs the upstream's implementation.
   */
  upstream?: IdentityStack;
  /** Ports chosen before (a deployment's plan), so a stack rebuilt by another worker is the same one. */
  ports?: { servers: number[]; agentFacing: number };
  /**
   * A downstream stack reaches its upstream through a relay listening on this loopback port (a
   * one-backend TCP balancer), so that an outage of the upstream can be made by stopping it alone.
   */
  relayPort?: number;
  /**
   * How the stack's agents attest: join_token (default; a fresh token per attestation) or x509pop,
   * with a certificate per agent from a node CA kept in the run directory (node-certificates.ts),
   * which lets an agent attest again by itself, and so rebootstrap.
   */
  nodeAttestor?: 'join_token' | 'x509pop';
  /**
   * Restart an agent that exits on its own with a failure code, as systemd's Restart=on-failure or a
   * Kubernetes pod would: SPIRE's agent exits to rebootstrap and relies on that. Agents stopped or
   * killed by a signal (stop(), faults) are left down. The supervision lives in this object, so in
   * the process that holds it.
   */
  restartAgentsOnExit?: boolean;
}

/** systemd's default RestartSec is 100 ms; a second keeps a crash loop from hogging the host. */
const AGENT_RESTART_DELAY_MS = 1000;

/** Group id downstream servers run under, so the `unix:gid` selector of their entry matches them alone. */
export const DOWNSTREAM_SERVER_GID = 4242;

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
  await pollUntilDone(
    async () => ((await check()) ? undefined : 'not ready'),
    Date.now() + timeoutMs,
    () => `${what} did not become ready within ${timeoutMs} ms\n${describe()}`,
    200,
  );
}

/**
 * One trust domain on this host: SPIRE server processes of one implementation (one, or several
 * sharing a PostgreSQL datastore, optionally behind a TCP load balancer, optionally downstream of
 * another stack) and agents attached to them, each a detached process
 * configured by an HCL file in the run directory; its servers are driven over their admin API.
 */
export class IdentityStack {
  readonly trustDomain: string;
  readonly serverSockets: string[];
  readonly serverConfigPaths: string[];
  readonly agentSockets: string[];
  readonly agentConfigPaths: string[];
  readonly bundlePath: string;
  readonly servers: (ManagedProcess | undefined)[];
  readonly agents: (ManagedProcess | undefined)[];
  readonly upstreamAgentSocket: string;
  readonly upstreamAgentConfigPath: string;
  /** The SPIFFE ID this stack's servers get from their upstream agent (downstream stacks only). */
  readonly downstreamId: string;
  upstreamAgent: ManagedProcess | undefined;
  balancer: ManagedProcess | undefined;
  /** The `upstream-relay` process of a downstream stack given a relay port. */
  relay: ManagedProcess | undefined;
  /** How many times each agent was restarted after exiting on its own (restartAgentsOnExit). */
  readonly agentRestarts: number[];
  private stopping = false;

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
    const agentFile = (i: number, suffix: string) =>
      join(dir, i === 0 ? `agent${suffix}` : `agent-${i}${suffix}`);
    const agents = Array.from({ length: options.agents ?? 1 }, (_, i) => i);
    this.agentSockets = agents.map((i) => agentFile(i, '.sock'));
    this.agentConfigPaths = agents.map((i) => agentFile(i, '.conf'));
    this.agents = agents.map(() => undefined);
    this.agentRestarts = agents.map(() => 0);
    this.upstreamAgentSocket = join(dir, 'upstream-agent.sock');
    this.upstreamAgentConfigPath = join(dir, 'upstream-agent.conf');
    this.downstreamId = `spiffe://${options.trustDomain}/downstream/${basename(dir)}`;
    this.bundlePath = join(dir, 'bootstrap-bundle.pem');
  }

  get implementation(): SpireImplementation {
    return implementationFor(this.options.implementation ?? 'tspire');
  }

  /** The implementation of a downstream stack's upstream agent: its upstream's. */
  get upstreamAgentImplementation(): SpireImplementation {
    return this.options.upstream?.implementation ?? this.implementation;
  }

  /** The first server's admin socket, where admin operations and CLI commands go by default. */
  get serverSocket(): string {
    return this.serverSockets[0]!;
  }

  get serverPort(): number {
    return this.serverPorts[0]!;
  }

  get server(): ManagedProcess | undefined {
    return this.servers[0];
  }

  /** The first agent: its Workload API socket, config and process. */
  get agentSocket(): string {
    return this.agentSockets[0]!;
  }

  get agentConfigPath(): string {
    return this.agentConfigPaths[0]!;
  }

  get agent(): ManagedProcess | undefined {
    return this.agents[0];
  }

  get relayPort(): number | undefined {
    return this.options.relayPort;
  }

  /** Where this downstream stack's servers and upstream agent dial their upstream. */
  private get upstreamDialPort(): number {
    return this.options.relayPort ?? this.options.upstream!.agentFacingPort;
  }

  static async create(options: IdentityStackOptions): Promise<IdentityStack> {
    const servers = options.servers ?? 1;
    const implementation = options.implementation ?? 'tspire';
    const database: DatabaseChoice =
      options.database ?? implementationFor(implementation).embeddedDatabase(options.runDir);
    if (servers > 1 && database.type !== 'postgres') {
      throw new Error(
        'several servers need a shared datastore: give a PostgreSQL database (an embedded one serves one process)',
      );
    }
    if (options.agentInspectorPort !== undefined && implementation !== 'tspire')
      throw new Error('an agent inspector port needs the bundled tspire-agent (a Node process)');
    if (options.upstream && process.getuid?.() !== 0) {
      throw new Error(
        'a downstream stack runs its servers under their own group id so that only they match their ' +
          'downstream entry, which needs root',
      );
    }
    mkdirSync(options.runDir, { recursive: true });
    // SQLite creates its file, not the directory it goes in.
    if (database.type === 'sqlite3') mkdirSync(dirname(database.file), { recursive: true });
    if (options.ports && options.ports.servers.length !== servers)
      throw new Error(
        `ports for ${options.ports.servers.length} servers given, ${servers} servers asked for`,
      );
    const serverPorts =
      options.ports?.servers ?? (await Promise.all(Array.from({ length: servers }, () => freePort())));
    const agentFacingPort =
      options.ports?.agentFacing ?? (options.loadBalancer ? await freePort() : serverPorts[0]!);
    if (options.relayPort !== undefined && !options.upstream)
      throw new Error('a relay port is for a downstream stack: give its upstream too');
    const stack = new IdentityStack(
      { ...options, trustDomain: options.trustDomain ?? 'example.org', database, servers },
      serverPorts,
      agentFacingPort,
    );
    const nodeCa =
      options.nodeAttestor === 'x509pop' ? new NodeCertificateAuthority(options.runDir) : undefined;
    await nodeCa?.ensure();
    const common = {
      trustDomain: stack.trustDomain,
      ...(nodeCa ? { x509popCaBundlePath: nodeCa.bundlePath } : {}),
      database,
      caTtl: options.caTtl ?? '24h',
      x509SvidTtl: options.x509SvidTtl ?? '1h',
      jwtSvidTtl: options.jwtSvidTtl ?? '5m',
      ...(options.agentTtl ? { agentTtl: options.agentTtl } : {}),
      logLevel: options.logLevel ?? 'INFO',
      ...(options.caRotationCheckInterval
        ? { caRotationCheckInterval: options.caRotationCheckInterval }
        : {}),
      ...options.serverKnobs,
      ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
    };
    serverPorts.forEach((port, i) => {
      writeFileSync(
        stack.serverConfigPaths[i]!,
        stack.implementation.renderServerConfig({
          ...common,
          bindPort: port,
          socketPath: stack.serverSockets[i]!,
          dataDir: join(options.runDir, i === 0 ? 'server-data' : `server-${i}-data`),
          ...(options.upstream
            ? {
                upstream: {
                  serverPort: stack.upstreamDialPort,
                  workloadApiSocket: stack.upstreamAgentSocket,
                },
              }
            : {}),
          ...(options.telemetry && i === 0
            ? {
                metricsPort: options.telemetry.serverMetricsPort,
                healthPort: options.telemetry.serverHealthPort,
              }
            : {}),
        }),
      );
    });
    for (const [i, configPath] of stack.agentConfigPaths.entries()) {
      const name = i === 0 ? 'agent' : `agent-${i}`;
      const nodeAttestor: NodeAttestorChoice = nodeCa
        ? { name: 'x509pop', ...(await nodeCa.ensureNode(name, options.runDir)) }
        : { name: 'join_token' };
      writeFileSync(
        configPath,
        stack.implementation.renderAgentConfig({
          trustDomain: stack.trustDomain,
          serverPort: agentFacingPort,
          socketPath: stack.agentSockets[i]!,
          dataDir: stack.agentDataDir(i),
          trustBundlePath: stack.bundlePath,
          syncInterval: options.syncInterval ?? '5s',
          logLevel: options.logLevel ?? 'INFO',
          nodeAttestor,
          ...options.agentKnobs,
          ...(options.telemetry && i === 0
            ? {
                metricsPort: options.telemetry.agentMetricsPort,
                healthPort: options.telemetry.agentHealthPort,
              }
            : {}),
        }),
      );
    }
    if (options.upstream) {
      writeFileSync(
        stack.upstreamAgentConfigPath,
        stack.upstreamAgentImplementation.renderAgentConfig({
          trustDomain: stack.trustDomain,
          serverPort: stack.upstreamDialPort,
          socketPath: stack.upstreamAgentSocket,
          dataDir: stack.upstreamAgentDataDir(),
          trustBundlePath: options.upstream.bundlePath,
          syncInterval: options.syncInterval ?? '5s',
          logLevel: options.logLevel ?? 'INFO',
          ...options.agentKnobs,
        }),
      );
    }
    return stack;
  }

  /** The admin operations on server `server` (the first by default). */
  admin(server = 0): ServerAdmin {
    return this.implementation.admin(this.serverSockets[server]!);
  }

  /** The admin operations on every server, in order. */
  admins(): ServerAdmin[] {
    return this.serverSockets.map((_, i) => this.admin(i));
  }

  /** Runs the implementation's server CLI against server `server` (tests and demos of the CLI itself). */
  serverCli(args: string[], server = 0): Promise<CliResult> {
    const program = this.implementation.program('server');
    return runCommand(program.command, [
      ...program.prefix,
      ...args,
      '-socketPath',
      this.serverSockets[server]!,
    ]);
  }

  agentCli(args: string[], agent = 0): Promise<CliResult> {
    const program = this.implementation.program('agent');
    return runCommand(program.command, [
      ...program.prefix,
      ...args,
      '-socketPath',
      this.agentSockets[agent]!,
    ]);
  }

  /** The log of server `index` (its output, in the run directory). */
  serverLogPath(index: number): string {
    return join(this.options.runDir, `${this.processNames().servers[index]!}.log`);
  }

  /** Process names of this stack, as their pid and log files are named in the run directory. */
  private processNames() {
    const server = this.implementation.program('server').name;
    const agent = this.implementation.program('agent').name;
    return {
      servers: this.serverPorts.map((_, i) => (i === 0 ? server : `${server}-${i}`)),
      agents: this.agentSockets.map((_, i) => (i === 0 ? agent : `${agent}-${i}`)),
    };
  }

  /** Picks up the processes a previous worker started for this stack and that still run. */
  adoptRunning(): void {
    const dir = this.options.runDir;
    const names = this.processNames();
    names.servers.forEach((name, i) => (this.servers[i] ??= findProcess(dir, name)));
    names.agents.forEach((name, i) => (this.agents[i] ??= findProcess(dir, name)));
    this.balancer ??= findProcess(dir, 'tcp-balancer');
    this.upstreamAgent ??= findProcess(dir, 'upstream-agent');
    this.relay ??= findProcess(dir, 'upstream-relay');
  }

  /**
   * The process handles as the host has them now: handles of processes that are gone are dropped,
   * and processes another worker (or the fault watchdog) started are adopted.
   */
  refresh(): this {
    const live = (p: ManagedProcess | undefined) => (p?.isRunning() ? p : undefined);
    this.servers.forEach((p, i) => (this.servers[i] = live(p)));
    this.agents.forEach((p, i) => (this.agents[i] = live(p)));
    this.balancer = live(this.balancer);
    this.upstreamAgent = live(this.upstreamAgent);
    this.relay = live(this.relay);
    this.adoptRunning();
    return this;
  }

  /** Every server (and the balancer) running and healthy; starts only what is not. */
  async ensureServers(timeoutMs = 60_000): Promise<void> {
    this.adoptRunning();
    for (let i = 0; i < this.serverPorts.length; i++) {
      const running = this.servers[i]?.isRunning() && (await this.admin(i).healthy());
      if (!running) {
        await this.servers[i]?.stop();
        await this.startServer(i, timeoutMs);
      }
    }
    if (this.options.loadBalancer && !this.balancer?.isRunning()) await this.startBalancer();
  }

  /**
   * Agent `index` running: adopted if it runs, restarted from its saved SVID while that is valid,
   * else attested with a fresh token for `nodeId` (an alias entry on this stack's servers).
   */
  async ensureAgent(index: number, nodeId: string, timeoutMs = 60_000): Promise<void> {
    this.adoptRunning();
    if (this.agents[index]?.isRunning()) return;
    // An x509pop agent attests by itself, as often as it needs to.
    const resumable =
      this.options.nodeAttestor === 'x509pop' ||
      (await this.canResume(this.implementation, this.agentDataDir(index)));
    await this.startAgent(resumable ? undefined : await this.generateToken(nodeId), timeoutMs, index);
  }

  /**
   * Whether an agent can restart from the SVID saved in its data directory: it attested before and
   * that SVID has not expired (an agent down for longer than its SVID's lifetime attests afresh).
   */
  private async canResume(implementation: SpireImplementation, agentDataDir: string): Promise<boolean> {
    const leaf = (await implementation.storedAgentIdentity(agentDataDir))?.chain[0];
    if (leaf === undefined) return false;
    // A few seconds' margin: an agent resuming with an SVID about to expire could not renew it in time.
    return Date.parse(new X509Certificate(leaf).validTo) > Date.now() + 5000;
  }

  agentDataDir(index: number): string {
    return join(this.options.runDir, index === 0 ? 'agent-data' : `agent-${index}-data`);
  }

  /** Where a downstream's upstream agent keeps its SVID and bundle. */
  upstreamAgentDataDir(): string {
    return join(this.options.runDir, 'upstream-agent-data');
  }

  /**
   * The data directory of every agent of this stack, its upstream agent (a downstream's) included,
   * with the implementation that reads it.
   */
  agentDataDirs(): { agent: string; dir: string; implementation: SpireImplementation }[] {
    return [
      ...this.agentSockets.map((_, i) => ({
        agent: `agent-${i}`,
        dir: this.agentDataDir(i),
        implementation: this.implementation,
      })),
      ...(this.options.upstream
        ? [
            {
              agent: 'upstream agent',
              dir: this.upstreamAgentDataDir(),
              implementation: this.upstreamAgentImplementation,
            },
          ]
        : []),
    ];
  }

  /**
   * A downstream stack up, idempotently: a `downstream` entry on the upstream, the upstream agent
   * (attested with a fresh join token the first time), then the servers, which fetch their SVID from
   * that agent and their intermediate CA from the upstream.
   */
  async ensureDownstream(timeoutMs = 60_000): Promise<void> {
    const upstream = this.options.upstream;
    if (!upstream) throw new Error('this stack has no upstream');
    this.adoptRunning();
    if (!existsSync(upstream.bundlePath)) await upstream.writeBootstrapBundle();
    const nodeId = `${this.downstreamId}/node`;
    await upstream.admin().ensureEntry({
      parentId: nodeId,
      spiffeId: this.downstreamId,
      selectors: [`unix:gid:${DOWNSTREAM_SERVER_GID}`],
      downstream: true,
    });
    if (this.relayPort !== undefined) await this.ensureRelay();
    if (!this.upstreamAgent?.isRunning()) {
      const resumable = await this.canResume(this.upstreamAgentImplementation, this.upstreamAgentDataDir());
      await this.startUpstreamAgent(resumable ? undefined : await upstream.generateToken(nodeId), timeoutMs);
    }
    await this.ensureServers(timeoutMs);
  }

  /** Starts (or restarts, with no token) the agent that attaches this downstream stack to its upstream. */
  async startUpstreamAgent(joinToken: string | undefined, timeoutMs = 60_000): Promise<void> {
    // As in startAgent: a new attestation trusts the upstream's bundle as it is now.
    if (joinToken !== undefined) await this.options.upstream!.writeBootstrapBundle();
    const args = ['run', '-config', this.upstreamAgentConfigPath];
    if (joinToken) args.push('-joinToken', joinToken);
    const program = this.upstreamAgentImplementation.program('agent');
    const agent = startProcess(this.options.runDir, 'upstream-agent', program.command, [
      ...program.prefix,
      ...args,
    ]);
    this.upstreamAgent = agent;
    await waitFor(
      'upstream-agent',
      async () => {
        if (!agent.isRunning()) throw new Error(`upstream-agent exited during start:\n${agent.log()}`);
        return existsSync(this.upstreamAgentSocket);
      },
      timeoutMs,
      () => agent.log(),
    );
  }

  /** Starts one server, or all of them in order (the first creates the schema and the bundle). */
  async startServer(index?: number, timeoutMs = 60_000): Promise<void> {
    // Checked here, not when the stack is made: stopping one must work whatever the host has now.
    const unavailable = this.implementation.unavailable(this.options.database.type);
    if (unavailable) throw new Error(unavailable);
    const indexes = index === undefined ? this.serverPorts.map((_, i) => i) : [index];
    for (const i of indexes) {
      const program = this.implementation.program('server');
      const name = i === 0 ? program.name : `${program.name}-${i}`;
      const server = startProcess(
        this.options.runDir,
        name,
        program.command,
        [...program.prefix, 'run', '-config', this.serverConfigPaths[i]!],
        {},
        this.options.upstream ? DOWNSTREAM_SERVER_GID : undefined,
      );
      this.servers[i] = server;
      await waitFor(
        name,
        async () => {
          if (!server.isRunning()) throw new Error(`${name} exited during start:\n${server.log()}`);
          return existsSync(this.serverSockets[i]!) && (await this.admin(i).healthy());
        },
        timeoutMs,
        () => server.log(),
      );
    }
    if (this.options.loadBalancer && !this.balancer?.isRunning()) await this.startBalancer();
  }

  /** Starts (or restarts) the TCP load balancer in front of every server. */
  async startBalancer(timeoutMs = 30_000): Promise<void> {
    await this.startTcpBalancer(
      'balancer',
      'tcp-balancer',
      this.agentFacingPort,
      this.serverPorts,
      timeoutMs,
    );
  }

  /** The relay to the upstream running (adopted, or started); a no-op when it runs. */
  async ensureRelay(timeoutMs = 30_000): Promise<void> {
    const upstream = this.options.upstream;
    if (!upstream || this.relayPort === undefined) throw new Error('this stack has no upstream relay');
    this.relay ??= findProcess(this.options.runDir, 'upstream-relay');
    if (this.relay?.isRunning()) return;
    await this.startTcpBalancer(
      'relay',
      'upstream-relay',
      this.relayPort,
      [upstream.agentFacingPort],
      timeoutMs,
    );
  }

  /** Stops the relay: this stack's servers and upstream agent can no longer reach the upstream. */
  async stopRelay(): Promise<void> {
    this.relay ??= findProcess(this.options.runDir, 'upstream-relay');
    await this.relay?.stop();
  }

  /** Starts a tcp-balancer process and records it as `this[slot]` (so stop() finds it even if its start fails). */
  private async startTcpBalancer(
    slot: 'balancer' | 'relay',
    name: string,
    listenPort: number,
    backendPorts: number[],
    timeoutMs: number,
  ): Promise<void> {
    const script = join(packageRoot(), 'dist', 'deployment', 'balancer', 'tcp-balancer-main.js');
    const args = [script, '--listen', `127.0.0.1:${listenPort}`, '--health-interval-ms', '500'];
    for (const port of backendPorts) args.push('--backend', `127.0.0.1:${port}`);
    // The log is appended to across restarts: only this start's lines say whether it listens.
    const logFile = join(this.options.runDir, `${name}.log`);
    const earlier = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
    const balancer = startProcess(this.options.runDir, name, process.execPath, args);
    this[slot] = balancer;
    await waitFor(
      name,
      async () => {
        if (!balancer.isRunning()) throw new Error(`${name} exited during start:\n${balancer.log()}`);
        return balancer.log().slice(earlier).includes('"listening"');
      },
      timeoutMs,
      () => balancer.log(),
    );
  }

  /** Writes the server's current bundle for the agent to bootstrap from. */
  async writeBootstrapBundle(timeoutMs = 30_000): Promise<void> {
    // HA servers each add their own root to the shared bundle as they start, and a server reads the
    // bundle through a 1 s cache: an agent bootstrapped without some server's root cannot verify that
    // server when the balancer sends it there, and exits. Wait until the bundle holds every one.
    if (this.serverPorts.length > 1) {
      const roots = (await Promise.all(this.admins().map((a) => authorityState(a, 'x509')))).map(
        (state) => state.active,
      );
      await pollUntilDone(
        async () => {
          const held = await bundleAuthoritiesOf(this.admin(), 'x509');
          const missing = roots.filter((id) => id !== undefined && !held.has(id));
          return missing.length > 0 ? `the bundle lacks ${missing.join(', ')}` : undefined;
        },
        Date.now() + timeoutMs,
        (waited) => `bootstrap bundle: ${waited} after ${timeoutMs / 1000} s`,
      );
    }
    writeFileSync(this.bundlePath, await this.admin().bundlePem());
  }

  generateToken(spiffeId: string): Promise<string> {
    return this.admin().generateJoinToken(spiffeId);
  }

  async startAgent(joinToken: string | undefined, timeoutMs = 60_000, index = 0): Promise<void> {
    // Attesting trusts the bootstrap bundle alone: after a rotation the one written at spin-up may
    // hold only revoked roots, so a new attestation takes the bundle as it is now.
    if (joinToken !== undefined || !existsSync(this.bundlePath)) await this.writeBootstrapBundle();
    this.stopping = false;
    const agent = this.launchAgent(joinToken, index);
    const name = agent.name;
    await waitFor(
      name,
      async () => {
        if (!agent.isRunning()) throw new Error(`${name} exited during start:\n${agent.log()}`);
        return existsSync(this.agentSockets[index]!);
      },
      timeoutMs,
      () => agent.log(),
    );
  }

  /** Starts agent `index` (its token, if any, on the command line) and supervises it when asked. */
  private launchAgent(joinToken: string | undefined, index: number): ManagedProcess {
    const program = this.implementation.program('agent');
    const name = index === 0 ? program.name : `${program.name}-${index}`;
    const inspect = this.options.agentInspectorPort;
    const args = [
      ...(index === 0 && inspect !== undefined ? [`--inspect=127.0.0.1:${inspect}`] : []),
      ...program.prefix,
      'run',
      '-config',
      this.agentConfigPaths[index]!,
    ];
    if (joinToken) args.push('-joinToken', joinToken);
    const agent = startProcess(this.options.runDir, name, program.command, args);
    this.agents[index] = agent;
    if (this.options.restartAgentsOnExit) {
      void agent.exited.then(async (code) => {
        // A signal (stop(), a fault) or a clean exit leaves it down; so does a newer process in its slot.
        if (typeof code !== 'number' || code === 0 || this.stopping || this.agents[index] !== agent) return;
        await new Promise((resolve) => setTimeout(resolve, AGENT_RESTART_DELAY_MS));
        if (this.stopping || this.agents[index] !== agent) return;
        this.agentRestarts[index]!++;
        // A spent join token would only be refused: the agent resumes, or attests with x509pop.
        this.launchAgent(undefined, index);
      });
    }
    return agent;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const agent of this.agents) await agent?.stop();
    await this.balancer?.stop();
    for (const server of this.servers) await server?.stop();
    await this.upstreamAgent?.stop();
    await this.relay?.stop();
  }
}
