import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from './agent-config.js';
import { healthService as healthServiceDefinition, workloadService } from '../proto/services.js';
import type { TrustBundle } from '../spiffe/trust-bundle.js';
import { parsePemCertificates } from '../spiffe/pem.js';
import { createLogger } from '../telemetry/logger.js';
import { startTelemetryListeners } from '../telemetry/telemetry-listeners.js';
import { PeerTaggedServer } from '../transport/peer-tagged-server.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';
import { AgentMetrics } from './agent-metrics.js';
import { AgentStateStore } from './agent-state-store.js';
import { attestWithRetry, effectiveRebootstrapMode } from './bootstrap-policy.js';
import { JwtSvidCache } from './jwt-svid-cache.js';
import { CachingJwtSvidSource } from './jwt-svid-source.js';
import { BootstrapState } from './bootstrap-state.js';
import {
  attestNode,
  joinTokenAttestor,
  x509popAttestor,
  type NodeAttestorClient,
} from './node-attestation.js';
import { ServerConnection } from '../transport/server-connection.js';
import { SvidCache } from './svid-cache.js';
import {
  AgentFatalError,
  Synchronizer,
  agentIdentityFrom,
  identityPem,
  type AgentIdentity,
} from './synchronizer.js';
import { workloadApiHandlers } from './workload-api.js';

export interface RunningAgent {
  /** The Workload API socket path. */
  socketPath: string;
  agentId: string;
  metricsPort?: number;
  healthPort?: number;
  stop(): Promise<void>;
  /** Resolves when the agent has to stop on its own (banned, evicted, SVID expired). */
  fatal: Promise<AgentFatalError>;
}

export interface StartAgentOptions {
  logger?: Logger;
}

function bundleOf(trustDomain: string, roots: Buffer[]): TrustBundle {
  return {
    trustDomain,
    x509Authorities: roots.map((der) => ({ der, tainted: false })),
    jwtAuthorities: [],
    refreshHint: 0,
    sequenceNumber: 0,
  };
}

async function bootstrapRoots(config: AgentConfig): Promise<Buffer[]> {
  const path = config.agent.trustBundlePath;
  if (!path) return [];
  try {
    return parsePemCertificates(await readFile(path));
  } catch (error) {
    throw new Error(`could not parse trust bundle: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * tspire-agent: restores or attests its identity, serves the Workload API from its cache, and keeps
 * the cache in step with the server. It keeps serving when the server is gone and stops only when
 * SPIRE's agent would (its own SVID expired, banned, evicted).
 */
export async function startAgent(
  config: AgentConfig,
  options: StartAgentOptions = {},
): Promise<RunningAgent> {
  const logger = options.logger ?? createLogger(config.agent.logLevel, 'agent');
  const { trustDomain } = config.agent;
  const metrics = new AgentMetrics();
  const connection = new ServerConnection(
    `${config.agent.serverAddress}:${config.agent.serverPort}`,
    trustDomain,
  );
  const store =
    config.plugins.keyManager.name === 'disk'
      ? new AgentStateStore(config.plugins.keyManager.directory)
      : undefined;

  const attestorFor = async (): Promise<NodeAttestorClient> => {
    // As SPIRE's agent: a join token given wins over the configured node attestor.
    const token = config.agent.joinToken;
    if (token) return joinTokenAttestor(token);
    const plugin = config.plugins.nodeAttestor;
    if (plugin.name === 'x509pop') return x509popAttestor(plugin);
    throw new Error(
      'no join token was given (use -joinToken or agent.join_token) and no agent SVID is stored to resume with',
    );
  };

  const keys = config.plugins.keyManager;
  const bootstrapState = await BootstrapState.load(keys.name === 'disk' ? keys.directory : undefined);
  let rebootstrapMode = config.agent.rebootstrapMode;
  let identity: AgentIdentity;
  let roots: Buffer[];
  const saved = await store?.load();
  // SPIRE decides from the stored SVID before attesting, and again from the new one after.
  if (saved) rebootstrapMode = effectiveRebootstrapMode(rebootstrapMode, saved.reattestable, logger);
  const savedIdentity = saved
    ? agentIdentityFrom(saved.spiffeId, saved.certificateChain, saved.privateKeyPkcs8, saved.reattestable)
    : undefined;
  if (saved && savedIdentity && Date.now() < savedIdentity.notAfter) {
    identity = savedIdentity;
    roots = saved.bundleAuthorities;
    logger.info({ spiffe_id: identity.spiffeId }, 'Resuming with the agent SVID found in the data directory');
  } else {
    if (!config.agent.trustBundlePath && !config.agent.insecureBootstrap) {
      throw new Error('trust_bundle_path is required unless insecure_bootstrap is set');
    }
    const attestor = await attestorFor();
    if (config.agent.retryBootstrap !== undefined)
      logger.warn(
        "The 'retry_bootstrap' configuration is deprecated. It will be removed in SPIRE 1.14. Please test without the flag before upgrading.",
      );
    if (bootstrapState.use === 'rebootstrap')
      logger.info({ attempt: bootstrapState.connectionAttempts + 1 }, 'Server reattestation attempt');
    let bootstrapRootsUsed: Buffer[] = [];
    const attested = await attestWithRetry(
      async () => {
        // The trust bundle source is read again on every attempt, as SPIRE's is: an operator may
        // publish the server's new root while the agent retries.
        await bootstrapState.countAttempt();
        bootstrapRootsUsed = await bootstrapRoots(config);
        if (bootstrapRootsUsed.length === 0 && !config.agent.insecureBootstrap)
          throw new Error('no certificates found in trust bundle');
        try {
          return await attestNode(connection, bootstrapRootsUsed, attestor);
        } catch (error) {
          connection.reset();
          throw error;
        }
      },
      {
        retry: config.agent.retryBootstrap ?? true,
        rebootstrapMode,
        logger,
      },
    );
    roots = bootstrapRootsUsed;
    identity = agentIdentityFrom(
      attested.spiffeId,
      attested.certificateChain,
      attested.privateKeyPkcs8,
      attested.reattestable,
    );
    logger.info(
      { spiffe_id: identity.spiffeId, reattestable: identity.reattestable },
      'Node attestation was successful',
    );
    const outcome = await bootstrapState.succeeded();
    if (outcome)
      logger.info(`Success after ${(outcome.sinceMs / 1000).toFixed(3)}s attempts=${outcome.attempts}`);
  }

  rebootstrapMode = effectiveRebootstrapMode(rebootstrapMode, identity.reattestable, logger);
  // x509pop attests again with the same certificate; join_token's token is spent.
  const reattestor =
    config.plugins.nodeAttestor.name === 'x509pop' && !config.agent.joinToken
      ? await x509popAttestor(config.plugins.nodeAttestor)
      : undefined;

  const cache = new SvidCache(bundleOf(trustDomain, roots));
  const persist = async (current: AgentIdentity) => {
    await store?.save({
      spiffeId: current.spiffeId,
      certificateChain: current.certificateChain,
      privateKeyPkcs8: current.privateKeyPkcs8,
      bundleAuthorities: cache.bundle.x509Authorities.map((a) => a.der),
      reattestable: current.reattestable,
    });
  };
  await persist(identity);

  let resolveFatal!: (error: AgentFatalError) => void;
  const fatal = new Promise<AgentFatalError>((resolve) => (resolveFatal = resolve));
  const synchronizer = new Synchronizer({
    connection,
    cache,
    identity,
    syncIntervalMs: config.agent.experimental.syncInterval * 1000,
    metrics,
    logger,
    onIdentityChange: persist,
    bootstrapState,
    ...(rebootstrapMode === 'never' ? {} : { rebootstrapDelayMs: config.agent.rebootstrapDelay * 1000 }),
    ...(reattestor
      ? {
          reattest: () =>
            attestNode(
              connection,
              cache.bundle.x509Authorities.map((a) => a.der),
              reattestor,
            ),
        }
      : {}),
    onFatal: (error) => {
      logger.error({ err: error.message }, error.message);
      const forget = error.forgetIdentity && store ? store.clear() : Promise.resolve();
      void forget.finally(() => resolveFatal(error));
    },
  });
  // The stored bundle only matters for the next start: rewrite it when the bundle moved, not on every SVID.
  let persistedSequence = cache.bundle.sequenceNumber;
  cache.on('change', () => {
    if (cache.bundle.sequenceNumber === persistedSequence) return;
    persistedSequence = cache.bundle.sequenceNumber;
    void persist(synchronizer.agentIdentity).catch((error: unknown) =>
      logger.warn({ err: (error as Error).message }, 'Could not store the bundle in the data directory'),
    );
  });
  try {
    await synchronizer.syncOnce();
  } catch (error) {
    logger.warn(
      { err: (error as Error).message },
      'Initial synchronization failed; serving what the cache holds and retrying',
    );
  }
  synchronizer.start();

  const observe: RpcObserver = (service, method, status, seconds) =>
    metrics.rpc.record(service, method, status, seconds);
  const peers = new PeerTaggedServer({
    // At debug: any local process can open connections, and so could fill the log at a higher level.
    onRefused: (peer, reason) =>
      logger.debug(
        { pid: peer.kind === 'unix' ? peer.credentials.pid : undefined, reason },
        'Closed a Workload API connection',
      ),
  });
  const jwtCache = new JwtSvidCache(config.agent.jwtSvidCacheSize);
  const jwtSvids = new CachingJwtSvidSource(
    jwtCache,
    () =>
      connection.clients(
        cache.bundle.x509Authorities.map((a) => a.der),
        identityPem(synchronizer.agentIdentity),
      ),
    connection,
    logger,
    () => cache.bundle.jwtAuthorities.filter((k) => k.tainted).map((k) => k.keyId),
    (count) => metrics.taintedJwtSvids.inc(count),
  );
  peers.grpcServer.addService(
    workloadService,
    workloadApiHandlers({
      cache,
      jwtSvids,
      peers,
      observe,
      logger,
      onConnectionChange: (delta) => metrics.workloadConnections.inc(delta),
    }),
  );
  const ready = async () => cache.svidCount > 0 || cache.entryCount === 0;
  peers.grpcServer.addService(healthServiceDefinition, {
    Check: unary('grpc.health.v1.Health', 'Check', observe, async () => ({
      status: (await ready()) ? 'SERVING' : 'NOT_SERVING',
    })),
  });
  await peers.listenUnix(config.agent.socketPath, 0o777);
  logger.info({ address: config.agent.socketPath, network: 'unix' }, 'Starting Workload and SDS APIs');

  const telemetry = await startTelemetryListeners({
    telemetry: config.telemetry,
    healthChecks: config.healthChecks,
    registry: metrics.registry,
    live: async () => Date.now() < synchronizer.agentIdentity.notAfter,
    ready: async () => ({
      ready: await ready(),
      agent_svid_expires_at: new Date(synchronizer.agentIdentity.notAfter).toISOString(),
      last_successful_sync: synchronizer.lastSuccess
        ? new Date(synchronizer.lastSuccess).toISOString()
        : null,
      consecutive_sync_failures: synchronizer.consecutiveFailures,
      cached_svids: cache.svidCount,
    }),
  });

  let stopped = false;
  return {
    socketPath: config.agent.socketPath,
    agentId: identity.spiffeId,
    ...(telemetry.metricsPort !== undefined ? { metricsPort: telemetry.metricsPort } : {}),
    ...(telemetry.healthPort !== undefined ? { healthPort: telemetry.healthPort } : {}),
    fatal,
    async stop() {
      if (stopped) return;
      stopped = true;
      await synchronizer.stop();
      await peers.close();
      await telemetry.close();
      jwtCache.clear();
      connection.close();
      logger.info('Agent stopped');
    },
  };
}
