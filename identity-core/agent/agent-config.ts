/**
 * tspire-agent's configuration: the shape of SPIRE's agent.conf (the subset this
 * agent implements), validated strictly and normalized to camelCase with every
 * duration in seconds and every default applied.
 */
import { z } from 'zod';
import { DEFAULT_JWT_SVID_CACHE_SIZE } from './jwt-svid-cache.js';
import {
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

export const AGENT_DEFAULTS = {
  dataDir: '.',
  logLevel: 'INFO',
  socketPath: '/tmp/spire-agent/public/api.sock',
  syncInterval: '5s',
  rebootstrapDelay: '10m',
} as const;

export type RebootstrapMode = 'never' | 'auto' | 'always';

export interface AgentConfig {
  agent: {
    dataDir: string;
    logLevel: LogLevel;
    serverAddress: string;
    serverPort: number;
    /** Unix socket of the SPIFFE Workload API (which also answers grpc.health.v1). */
    socketPath: string;
    /** PEM bundle to trust the server with on first contact; absent only with insecureBootstrap. */
    trustBundlePath?: string;
    trustDomain: string;
    joinToken?: string;
    insecureBootstrap: boolean;
    /**
     * SPIRE's rebootstrap_mode: whether an agent whose server presents a root it does not trust may
     * throw its bundle away and attest again ('auto': after rebootstrapDelay; 'never': it exits).
     * It needs a node attestor that can re-attest (x509pop), which join_token is not.
     */
    rebootstrapMode: RebootstrapMode;
    /** Seconds the server's root must stay unknown before the agent rebootstraps. */
    rebootstrapDelay: number;
    /**
     * SPIRE's deprecated retry_bootstrap: retry a failed attestation with backoff (absent: SPIRE's
     * default, true). Kept absent when unset because SPIRE refuses it beside a rebootstrap mode.
     */
    retryBootstrap?: boolean;
    /** How many JWT-SVIDs the agent keeps (SPIRE's `jwt_svid_cache_size`). */
    jwtSvidCacheSize: number;
    experimental: {
      /** Seconds between syncs with the server while healthy. */
      syncInterval: number;
    };
  };
  plugins: {
    keyManager: { name: 'memory' } | { name: 'disk'; directory: string };
    nodeAttestor:
      | { name: 'join_token' }
      | { name: 'x509pop'; privateKeyPath: string; certificatePath: string; intermediatesPath?: string };
    workloadAttestor?: { name: 'unix' };
  };
  telemetry: TelemetryConfig;
  healthChecks: HealthChecksConfig;
}

const agentSection = section({
  data_dir: nonEmptyText.default(AGENT_DEFAULTS.dataDir),
  log_level: logLevel.prefault(AGENT_DEFAULTS.logLevel),
  server_address: nonEmptyText,
  server_port: port,
  socket_path: nonEmptyText.default(AGENT_DEFAULTS.socketPath),
  trust_bundle_path: nonEmptyText.optional(),
  trust_domain: trustDomain,
  join_token: text.optional(),
  insecure_bootstrap: flag.default(false),
  rebootstrap_mode: z
    .string({ error: 'expected a string' })
    .default('never')
    .transform((mode, ctx) => {
      // SPIRE takes an empty mode as "never".
      if (mode === '') return 'never';
      if (mode === 'never' || mode === 'auto' || mode === 'always') return mode;
      ctx.issues.push({
        code: 'custom',
        message: `unknown rebootstrap mode specified: ${mode}`,
        input: mode,
      });
      return z.NEVER;
    }),
  rebootstrap_delay: positiveDuration.prefault(AGENT_DEFAULTS.rebootstrapDelay),
  retry_bootstrap: flag.optional(),
  jwt_svid_cache_size: z
    .number({ error: 'expected a whole number' })
    .int({ error: 'expected a whole number' })
    .min(1, { error: 'must be at least 1' })
    .default(DEFAULT_JWT_SVID_CACHE_SIZE),
  experimental: section({
    sync_interval: positiveDuration.prefault(AGENT_DEFAULTS.syncInterval),
  }).prefault({}),
});

const pluginsSection = section({
  KeyManager: pluginChoice('KeyManager', {
    memory: section({ plugin_data: emptyPluginData }),
    disk: section({ plugin_data: section({ directory: nonEmptyText }) }),
  }),
  NodeAttestor: pluginChoice('NodeAttestor', {
    join_token: section({ plugin_data: emptyPluginData }),
    x509pop: section({
      plugin_data: section({
        private_key_path: text.optional(),
        certificate_path: text.optional(),
        intermediates_path: text.optional(),
      }).superRefine((data, ctx) => {
        if (!data.private_key_path)
          ctx.addIssue({
            code: 'custom',
            path: ['private_key_path'],
            message: 'private_key_path is required',
          });
        if (!data.certificate_path)
          ctx.addIssue({
            code: 'custom',
            path: ['certificate_path'],
            message: 'certificate_path is required',
          });
      }),
    }),
  }),
  WorkloadAttestor: pluginChoice('WorkloadAttestor', {
    unix: section({ plugin_data: emptyPluginData }),
  }).optional(),
});

const rawAgentConfig = section({
  agent: agentSection,
  plugins: pluginsSection,
  telemetry,
  health_checks: healthChecks,
});

function normalize(input: z.output<typeof rawAgentConfig>): AgentConfig {
  const { agent, plugins } = input;
  const keys = plugins.KeyManager;
  const attestor = plugins.NodeAttestor;
  return {
    agent: {
      dataDir: agent.data_dir,
      logLevel: agent.log_level,
      serverAddress: agent.server_address,
      serverPort: agent.server_port,
      socketPath: agent.socket_path,
      ...(agent.trust_bundle_path === undefined ? {} : { trustBundlePath: agent.trust_bundle_path }),
      trustDomain: agent.trust_domain,
      // An empty token is as good as none: the agent then relies on its stored SVID.
      ...(agent.join_token ? { joinToken: agent.join_token } : {}),
      insecureBootstrap: agent.insecure_bootstrap,
      rebootstrapMode: agent.rebootstrap_mode,
      rebootstrapDelay: agent.rebootstrap_delay,
      ...(agent.retry_bootstrap === undefined ? {} : { retryBootstrap: agent.retry_bootstrap }),
      jwtSvidCacheSize: agent.jwt_svid_cache_size,
      experimental: { syncInterval: agent.experimental.sync_interval },
    },
    plugins: {
      keyManager:
        keys.name === 'disk'
          ? { name: 'disk', directory: keys.block.plugin_data.directory }
          : { name: 'memory' },
      nodeAttestor:
        attestor.name === 'x509pop'
          ? {
              name: 'x509pop',
              privateKeyPath: attestor.block.plugin_data.private_key_path!,
              certificatePath: attestor.block.plugin_data.certificate_path!,
              ...(attestor.block.plugin_data.intermediates_path
                ? { intermediatesPath: attestor.block.plugin_data.intermediates_path }
                : {}),
            }
          : { name: 'join_token' },
      ...(plugins.WorkloadAttestor ? { workloadAttestor: { name: 'unix' as const } } : {}),
    },
    telemetry: input.telemetry,
    healthChecks: input.health_checks,
  };
}

/** Validates the decoded HCL document (blocks already collapsed to objects). */
export const agentConfigSchema = rawAgentConfig.transform(normalize).superRefine((config, ctx) => {
  const { trustBundlePath, insecureBootstrap, rebootstrapMode, retryBootstrap } = config.agent;
  if (rebootstrapMode !== 'never' && insecureBootstrap) {
    ctx.issues.push({
      code: 'custom',
      path: ['agent', 'rebootstrap_mode'],
      message: 'insecure_bootstrap option can not be used with rebootstrapping',
      input: rebootstrapMode,
    });
  }
  if (rebootstrapMode !== 'never' && retryBootstrap !== undefined) {
    ctx.issues.push({
      code: 'custom',
      path: ['agent', 'retry_bootstrap'],
      message: 'you can not set retry_bootstrap when using rebootstrap_mode',
      input: rebootstrapMode,
    });
  }
  if (insecureBootstrap && trustBundlePath !== undefined) {
    ctx.issues.push({
      code: 'custom',
      path: ['agent', 'insecure_bootstrap'],
      message: 'only one of insecure_bootstrap or trust_bundle_path can be specified, not both',
      input: insecureBootstrap,
    });
  }
  if (!insecureBootstrap && trustBundlePath === undefined) {
    ctx.issues.push({
      code: 'custom',
      path: ['agent', 'trust_bundle_path'],
      message: 'must be configured unless insecure_bootstrap is set',
      input: trustBundlePath,
    });
  }
});
