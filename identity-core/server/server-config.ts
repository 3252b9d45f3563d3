/**
 * tspire-server's configuration: the shape of SPIRE's server.conf (the subset this
 * server implements), validated strictly and normalized to camelCase with every
 * duration in seconds and every default applied.
 */
import { z } from 'zod';
import {
  duration,
  emptyPluginData,
  flag,
  healthChecks,
  logLevel,
  nonEmptyText,
  pluginChoice,
  port,
  positiveDuration,
  section,
  telemetry,
  text,
  trustDomain,
  type HealthChecksConfig,
  type LogLevel,
  type TelemetryConfig,
} from '../config/config-fields.js';
import { formatShortDuration } from '../config/duration.js';
import { agentPathTemplateProblem, DEFAULT_AGENT_PATH_TEMPLATE } from './x509pop-attestor.js';

export const SERVER_DEFAULTS = {
  bindAddress: '0.0.0.0',
  bindPort: 8081,
  socketPath: '/tmp/spire-server/private/api.sock',
  logLevel: 'INFO',
  caTtl: '24h',
  defaultX509SvidTtl: '1h',
  defaultJwtSvidTtl: '5m',
  caKeyType: 'ec-p256',
  caRotationCheckInterval: '10s',
  maxAttestedNodeInfoStaleness: '0s',
  entryCacheReloadInterval: '5s',
} as const;

export type CaKeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-4096';

export type DatabaseType = 'postgres' | 'pglite';

export interface ServerConfig {
  server: {
    bindAddress: string;
    bindPort: number;
    /** Unix socket of the admin API (entries, tokens, bundle, local authority, health). */
    socketPath: string;
    trustDomain: string;
    dataDir: string;
    logLevel: LogLevel;
    /** Seconds. */
    caTtl: number;
    defaultX509SvidTtl: number;
    defaultJwtSvidTtl: number;
    /** Seconds; SPIRE uses the default X509-SVID TTL when agent_ttl is unset. */
    agentTtl: number;
    caKeyType: CaKeyType;
    /**
     * Seconds (SPIRE's max_attested_node_info_staleness): how long a cached attested node authorizes
     * its agent without a datastore read; 0, the default, turns the node cache off.
     */
    maxAttestedNodeInfoStaleness: number;
    experimental: {
      /** Ours, not SPIRE's: how often the CA rotator checks the journal (SPIRE hard-codes 10 s). */
      caRotationCheckInterval: number;
      /** SPIRE's experimental.cache_reload_interval: reload period of the in-memory entry cache. */
      entryCacheReloadInterval: number;
    };
  };
  plugins: {
    dataStore: {
      name: 'sql';
      databaseType: DatabaseType;
      connectionString: string;
      roConnectionString?: string;
    };
    keyManager: { name: 'memory' } | { name: 'disk'; keysPath: string };
    nodeAttestor?: { name: 'join_token' };
    /** NodeAttestor "x509pop" (SPIRE's external_pki mode), beside join_token, which is always served. */
    x509popAttestor?: {
      /** PEM files of the CAs agents' certificates must chain to (ca_bundle_path or ca_bundle_paths). */
      caBundlePaths: string[];
      agentPathTemplate: string;
    };
    /** Present on a downstream (nested) server: where its intermediate CA comes from. */
    upstreamAuthority?: {
      name: 'spire';
      serverAddress: string;
      serverPort: number;
      /** The downstream's own agent's Workload API socket, used to authenticate upstream. */
      workloadApiSocket: string;
    };
  };
  telemetry: TelemetryConfig;
  healthChecks: HealthChecksConfig;
}

const DATABASE_TYPES = ['postgres', 'pglite'] as const;

const serverSection = section({
  bind_address: text.default(SERVER_DEFAULTS.bindAddress),
  bind_port: port.default(SERVER_DEFAULTS.bindPort),
  socket_path: nonEmptyText.default(SERVER_DEFAULTS.socketPath),
  trust_domain: trustDomain,
  data_dir: nonEmptyText,
  log_level: logLevel.prefault(SERVER_DEFAULTS.logLevel),
  ca_ttl: positiveDuration.prefault(SERVER_DEFAULTS.caTtl),
  default_x509_svid_ttl: positiveDuration.prefault(SERVER_DEFAULTS.defaultX509SvidTtl),
  default_jwt_svid_ttl: positiveDuration.prefault(SERVER_DEFAULTS.defaultJwtSvidTtl),
  agent_ttl: positiveDuration.optional(),
  ca_key_type: z
    .enum(['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'], {
      error: (issue) =>
        `unsupported ca_key_type ${JSON.stringify(issue.input)} (supported: ec-p256, ec-p384, rsa-2048, rsa-4096)`,
    })
    .default(SERVER_DEFAULTS.caKeyType),
  max_attested_node_info_staleness: duration
    .refine((seconds) => seconds >= 0, { error: 'must not be negative' })
    .prefault(SERVER_DEFAULTS.maxAttestedNodeInfoStaleness),
  // SPIRE's per-client-IP limits on attestations and signings. Accepted so that one server.conf serves
  // both implementations; the bundled server does not rate-limit either way (README: where it differs).
  ratelimit: section({ attestation: flag.optional(), signing: flag.optional() }).optional(),
  experimental: section({
    ca_rotation_check_interval: positiveDuration.prefault(SERVER_DEFAULTS.caRotationCheckInterval),
    cache_reload_interval: positiveDuration.prefault(SERVER_DEFAULTS.entryCacheReloadInterval),
  }).prefault({}),
});

const dataStore = pluginChoice('DataStore', {
  sql: section({
    plugin_data: section({
      database_type: z.enum(DATABASE_TYPES, {
        error: (issue) =>
          issue.input === undefined
            ? 'must be configured'
            : `unsupported database_type ${JSON.stringify(issue.input)} (supported: ${DATABASE_TYPES.join(', ')})`,
      }),
      connection_string: nonEmptyText,
      ro_connection_string: nonEmptyText.optional(),
    }),
  }),
});

const keyManager = pluginChoice('KeyManager', {
  memory: section({ plugin_data: emptyPluginData }),
  disk: section({ plugin_data: section({ keys_path: nonEmptyText }) }),
});

/** SPIRE's server runs every NodeAttestor configured, so unlike the other plugins several may be. */
const nodeAttestors = section(
  {
    join_token: section({ plugin_data: emptyPluginData }).optional(),
    x509pop: section({
      plugin_data: section({
        mode: z
          .literal('external_pki', {
            error: 'only mode "external_pki" is supported (the bundled server has no "spiffe" mode)',
          })
          .optional(),
        ca_bundle_path: nonEmptyText.optional(),
        ca_bundle_paths: z.array(nonEmptyText, { error: 'expected a list of paths' }).optional(),
        agent_path_template: nonEmptyText.optional(),
      }).superRefine((data, ctx) => {
        if (data.ca_bundle_path !== undefined && data.ca_bundle_paths !== undefined)
          ctx.addIssue({
            code: 'custom',
            message: 'only one of ca_bundle_path or ca_bundle_paths can be configured, not both',
          });
        else if ((data.ca_bundle_path ?? data.ca_bundle_paths?.[0]) === undefined)
          ctx.addIssue({
            code: 'custom',
            message: 'one of ca_bundle_path or ca_bundle_paths must be configured',
          });
        const problem =
          data.agent_path_template === undefined
            ? undefined
            : agentPathTemplateProblem(data.agent_path_template);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['agent_path_template'],
            message: `failed to parse agent svid template: ${problem}`,
          });
      }),
    }).optional(),
  },
  'unsupported NodeAttestor plugin (supported: join_token, x509pop)',
);

const upstreamAuthority = pluginChoice('UpstreamAuthority', {
  spire: section({
    plugin_data: section({
      server_address: nonEmptyText,
      server_port: port,
      workload_api_socket: nonEmptyText,
    }),
  }),
});

const pluginsSection = section({
  DataStore: dataStore,
  KeyManager: keyManager,
  NodeAttestor: nodeAttestors.optional(),
  UpstreamAuthority: upstreamAuthority.optional(),
});

function normalize(input: z.output<typeof rawServerConfig>): ServerConfig {
  const { server, plugins } = input;
  const store = plugins.DataStore.block.plugin_data;
  const keys = plugins.KeyManager;
  const upstream = plugins.UpstreamAuthority?.block.plugin_data;
  const x509pop = plugins.NodeAttestor?.x509pop?.plugin_data;
  return {
    server: {
      bindAddress: server.bind_address,
      bindPort: server.bind_port,
      socketPath: server.socket_path,
      trustDomain: server.trust_domain,
      dataDir: server.data_dir,
      logLevel: server.log_level,
      caTtl: server.ca_ttl,
      defaultX509SvidTtl: server.default_x509_svid_ttl,
      defaultJwtSvidTtl: server.default_jwt_svid_ttl,
      agentTtl: server.agent_ttl ?? server.default_x509_svid_ttl,
      caKeyType: server.ca_key_type,
      maxAttestedNodeInfoStaleness: server.max_attested_node_info_staleness,
      experimental: {
        caRotationCheckInterval: server.experimental.ca_rotation_check_interval,
        entryCacheReloadInterval: server.experimental.cache_reload_interval,
      },
    },
    plugins: {
      dataStore: {
        name: 'sql',
        databaseType: store.database_type,
        connectionString: store.connection_string,
        ...(store.ro_connection_string === undefined
          ? {}
          : { roConnectionString: store.ro_connection_string }),
      },
      keyManager:
        keys.name === 'disk'
          ? { name: 'disk', keysPath: keys.block.plugin_data.keys_path }
          : { name: 'memory' },
      ...(plugins.NodeAttestor?.join_token ? { nodeAttestor: { name: 'join_token' as const } } : {}),
      ...(x509pop
        ? {
            x509popAttestor: {
              caBundlePaths: x509pop.ca_bundle_path
                ? [x509pop.ca_bundle_path]
                : (x509pop.ca_bundle_paths ?? []),
              agentPathTemplate: x509pop.agent_path_template ?? DEFAULT_AGENT_PATH_TEMPLATE,
            },
          }
        : {}),
      ...(upstream
        ? {
            upstreamAuthority: {
              name: 'spire' as const,
              serverAddress: upstream.server_address,
              serverPort: upstream.server_port,
              workloadApiSocket: upstream.workload_api_socket,
            },
          }
        : {}),
    },
    telemetry: input.telemetry,
    healthChecks: input.health_checks,
  };
}

const rawServerConfig = section({
  server: serverSection,
  plugins: pluginsSection,
  telemetry,
  health_checks: healthChecks,
});

/** Validates the decoded HCL document (blocks already collapsed to objects). */
export const serverConfigSchema = rawServerConfig.transform(normalize).superRefine((config, ctx) => {
  if (config.server.defaultX509SvidTtl > config.server.caTtl) {
    ctx.issues.push({
      code: 'custom',
      path: ['server', 'default_x509_svid_ttl'],
      message: `${formatShortDuration(config.server.defaultX509SvidTtl)} is longer than ca_ttl (${formatShortDuration(config.server.caTtl)})`,
      input: config.server.defaultX509SvidTtl,
    });
  }
  const store = config.plugins.dataStore;
  if (store.roConnectionString !== undefined && store.databaseType !== 'postgres') {
    ctx.issues.push({
      code: 'custom',
      path: ['plugins', 'DataStore', 'sql', 'plugin_data', 'ro_connection_string'],
      message: 'a read-only connection needs database_type "postgres": pglite serves one process',
      input: store.roConnectionString,
    });
  }
});

/** SPIRE stops guaranteeing a full SVID lifetime across CA rotations beyond this. */
const MAX_GUARANTEED_SVID_TTL = 7 * 24 * 3600;

/**
 * TTLs that a scheduled CA rotation may cut short: SPIRE activates the next CA when
 * a sixth of the current one's lifetime remains, so SVIDs longer than ca_ttl / 6
 * (capped at 7 days) may be issued shorter than asked. SPIRE logs these; so should we.
 */
export function serverConfigWarnings(config: ServerConfig): string[] {
  const { caTtl } = config.server;
  const limit = Math.min(caTtl / 6, MAX_GUARANTEED_SVID_TTL);
  const checks: [string, number][] = [
    ['default_x509_svid_ttl', config.server.defaultX509SvidTtl],
    ['default_jwt_svid_ttl', config.server.defaultJwtSvidTtl],
  ];
  // An agent_ttl equal to the X509-SVID TTL (its default) would only repeat that warning.
  if (config.server.agentTtl !== config.server.defaultX509SvidTtl)
    checks.push(['agent_ttl', config.server.agentTtl]);
  return checks
    .filter(([, ttl]) => ttl > limit)
    .map(
      ([name, ttl]) =>
        `${name} (${formatShortDuration(ttl)}) exceeds ${formatShortDuration(limit)}, the longest lifetime ` +
        `a CA rotation cannot cut short with ca_ttl ${formatShortDuration(caTtl)}: SVIDs may be issued ` +
        `with shorter lifetimes; lower ${name} or raise ca_ttl to ${formatShortDuration(ttl * 6)} or more`,
    );
}
