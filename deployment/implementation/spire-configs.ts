/** Renders SPIRE-shaped HCL server and agent configs from a few choices: both implementations read them. */

export type DatabaseChoice =
  | { type: 'pglite'; directory: string }
  /** Real SPIRE's embedded datastore (a build with cgo): one SQLite file. */
  | { type: 'sqlite3'; file: string }
  /** `roConnectionString`: a read replica, rendered as SPIRE's ro_connection_string. */
  | { type: 'postgres'; connectionString: string; roConnectionString?: string };

export interface ServerConfigChoices {
  trustDomain: string;
  bindPort: number;
  socketPath: string;
  dataDir: string;
  database: DatabaseChoice;
  caTtl: string;
  x509SvidTtl: string;
  jwtSvidTtl: string;
  /** The agents' own SVID lifetime; SPIRE's default is the X509-SVID TTL. */
  agentTtl?: string;
  logLevel: string;
  /** SPIRE's log_format; absent, each implementation logs its own way (the bundled one JSON always). */
  logFormat?: 'json' | 'text';
  caRotationCheckInterval?: string;
  /** SPIRE's max_attested_node_info_staleness (off when absent or "0s"). */
  maxAttestedNodeInfoStaleness?: string;
  /** SPIRE's experimental.cache_reload_interval: the entry cache's reload period. */
  cacheReloadInterval?: string;
  /**
   * SPIRE's per-client-IP rate limits (both on when absent, SPIRE's default). Benchmarks turn them off
   * for real SPIRE, whose simulated agents all dial from 127.0.0.1; the bundled server has none.
   */
  rateLimits?: { attestation: boolean; signing: boolean };
  healthPort?: number;
  metricsPort?: number;
  /** A downstream server: its upstream server's address and its own agent's Workload API socket. */
  upstream?: UpstreamChoice;
  /** Serve x509pop node attestation too, for node certificates chaining to this PEM bundle. */
  x509popCaBundlePath?: string;
}

/** SPIRE's failure knobs a topology sets on every server. */
export type ServerKnobChoices = Pick<
  ServerConfigChoices,
  'maxAttestedNodeInfoStaleness' | 'cacheReloadInterval'
>;

/** SPIRE's failure knobs a topology sets on every agent. */
export type AgentKnobChoices = Pick<
  AgentConfigChoices,
  'rebootstrapMode' | 'rebootstrapDelay' | 'retryBootstrap'
>;

export interface UpstreamChoice {
  serverPort: number;
  workloadApiSocket: string;
}

export type NodeAttestorChoice =
  { name: 'join_token' } | { name: 'x509pop'; certificatePath: string; privateKeyPath: string };

export interface AgentConfigChoices {
  trustDomain: string;
  serverPort: number;
  socketPath: string;
  dataDir: string;
  trustBundlePath: string;
  syncInterval: string;
  logLevel: string;
  logFormat?: 'json' | 'text';
  /** SPIRE's rebootstrap_mode and rebootstrap_delay. */
  rebootstrapMode?: 'never' | 'auto' | 'always';
  rebootstrapDelay?: string;
  /** SPIRE's deprecated retry_bootstrap: rendered only when given, as SPIRE refuses it beside a rebootstrap mode. */
  retryBootstrap?: boolean;
  /** How the agent attests: join_token (the default; the token comes on the command line) or x509pop. */
  nodeAttestor?: NodeAttestorChoice;
  healthPort?: number;
  metricsPort?: number;
}

const q = (value: string) => JSON.stringify(value);

function telemetry(healthPort?: number, metricsPort?: number): string {
  let text = '';
  if (metricsPort !== undefined)
    text += `telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = ${metricsPort}\n  }\n}\n`;
  if (healthPort !== undefined) {
    text += `health_checks {\n  listener_enabled = true\n  bind_address = "127.0.0.1"\n  bind_port = "${healthPort}"\n}\n`;
  }
  return text;
}

/** `key = value` lines at `indent`, for the values given. */
function lines(indent: string, values: [string, string | boolean | undefined][]): string {
  return values
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${indent}${key} = ${typeof value === 'string' ? q(value) : String(value)}\n`)
    .join('');
}

function experimentalBlock(values: [string, string | undefined][]): string {
  const body = lines('    ', values);
  return body ? `  experimental {\n${body}  }\n` : '';
}

export function renderServerConfig(c: ServerConfigChoices): string {
  const connection =
    c.database.type === 'pglite'
      ? c.database.directory
      : c.database.type === 'sqlite3'
        ? c.database.file
        : c.database.connectionString;
  return `server {
  bind_address = "127.0.0.1"
  bind_port = "${c.bindPort}"
  socket_path = ${q(c.socketPath)}
  trust_domain = ${q(c.trustDomain)}
  data_dir = ${q(c.dataDir)}
  log_level = ${q(c.logLevel)}
${lines('  ', [['log_format', c.logFormat]])}  ca_ttl = ${q(c.caTtl)}
  default_x509_svid_ttl = ${q(c.x509SvidTtl)}
  default_jwt_svid_ttl = ${q(c.jwtSvidTtl)}
${lines('  ', [
  ['agent_ttl', c.agentTtl],
  ['max_attested_node_info_staleness', c.maxAttestedNodeInfoStaleness],
])}${
    c.rateLimits
      ? `  ratelimit {\n    attestation = ${c.rateLimits.attestation}\n    signing = ${c.rateLimits.signing}\n  }\n`
      : ''
  }${experimentalBlock([
    ['ca_rotation_check_interval', c.caRotationCheckInterval],
    ['cache_reload_interval', c.cacheReloadInterval],
  ])}}

plugins {
  DataStore "sql" {
    plugin_data {
      database_type = ${q(c.database.type)}
      connection_string = ${q(connection)}
${c.database.type === 'postgres' && c.database.roConnectionString ? `      ro_connection_string = ${q(c.database.roConnectionString)}\n` : ''}    }
  }
  KeyManager "disk" {
    plugin_data {
      keys_path = ${q(`${c.dataDir}/keys.json`)}
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
${c.x509popCaBundlePath ? x509popServer(c.x509popCaBundlePath) : ''}${c.upstream ? upstreamAuthority(c.upstream) : ''}}
${telemetry(c.healthPort, c.metricsPort)}`;
}

function x509popServer(caBundlePath: string): string {
  return `  NodeAttestor "x509pop" {
    plugin_data {
      ca_bundle_path = ${q(caBundlePath)}
    }
  }
`;
}

function agentNodeAttestor(choice: NodeAttestorChoice | undefined): string {
  if (choice?.name !== 'x509pop') return '  NodeAttestor "join_token" {\n    plugin_data {}\n  }\n';
  return `  NodeAttestor "x509pop" {
    plugin_data {
      private_key_path = ${q(choice.privateKeyPath)}
      certificate_path = ${q(choice.certificatePath)}
    }
  }
`;
}

function upstreamAuthority(u: UpstreamChoice): string {
  return `  UpstreamAuthority "spire" {
    plugin_data {
      server_address = "127.0.0.1"
      server_port = "${u.serverPort}"
      workload_api_socket = ${q(u.workloadApiSocket)}
    }
  }
`;
}

export function renderAgentConfig(c: AgentConfigChoices): string {
  return `agent {
  data_dir = ${q(c.dataDir)}
  log_level = ${q(c.logLevel)}
${lines('  ', [['log_format', c.logFormat]])}  server_address = "127.0.0.1"
  server_port = "${c.serverPort}"
  socket_path = ${q(c.socketPath)}
  trust_bundle_path = ${q(c.trustBundlePath)}
  trust_domain = ${q(c.trustDomain)}
${lines('  ', [
  ['rebootstrap_mode', c.rebootstrapMode],
  ['rebootstrap_delay', c.rebootstrapDelay],
  ['retry_bootstrap', c.retryBootstrap],
])}  experimental {
    sync_interval = ${q(c.syncInterval)}
  }
}

plugins {
  KeyManager "disk" {
    plugin_data {
      directory = ${q(c.dataDir)}
    }
  }
${agentNodeAttestor(c.nodeAttestor)}  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
${telemetry(c.healthPort, c.metricsPort)}`;
}
