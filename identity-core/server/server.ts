import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { openDatastore, type Datastore } from '../datastore/datastore.js';
import { DiskKeyManager, MemoryKeyManager, type KeyManager } from '../pki/key-manager.js';
import {
  agentService as agentServiceDefinition,
  bundleService as bundleServiceDefinition,
  entryService as entryServiceDefinition,
  healthService as healthServiceDefinition,
  localAuthorityService as localAuthorityServiceDefinition,
  loggerService as loggerServiceDefinition,
  svidService as svidServiceDefinition,
} from '../proto/services.js';
import { createLogger } from '../telemetry/logger.js';
import { checkServerStartup } from './startup-checks.js';
import { startTelemetryListeners } from '../telemetry/telemetry-listeners.js';
import { PeerTaggedServer, type TlsIdentity } from '../transport/peer-tagged-server.js';
import { addImplementedMethods, type RpcObserver } from '../transport/rpc-handlers.js';
import { AttestedNodeCache } from './attested-node-cache.js';
import { AgentAuthorizer } from './agent-authorizer.js';
import { agentService } from './agent-service.js';
import { ApiAuthorization } from './api-authorization.js';
import { bundleService } from './bundle-service.js';
import { CaManager } from './ca/ca-manager.js';
import { DownstreamAuthorizer } from './downstream-authorizer.js';
import { UpstreamClient } from './ca/upstream-client.js';
import { EntryCache, type EntrySource } from './entry-cache.js';
import { entryService } from './entry-service.js';
import { healthService } from './health-service.js';
import { localAuthorityService } from './local-authority-service.js';
import { loggerService } from './logger-service.js';
import type { ServerConfig } from './server-config.js';
import { ServerMetrics } from './server-metrics.js';
import { svidService } from './svid-service.js';
import type { X509PopSettings } from './x509pop-attestor.js';
import { parsePemCertificates } from '../spiffe/pem.js';

export interface RunningServer {
  /** The TCP port the agent-facing API listens on (useful when bind_port is 0). */
  port: number;
  socketPath: string;
  metricsPort?: number;
  healthPort?: number;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  logger?: Logger;
}

/** The x509pop attestor's CA bundle, read once at start as SPIRE's plugin reads it when configured. */
async function loadX509PopSettings(config: ServerConfig): Promise<X509PopSettings | undefined> {
  const attestor = config.plugins.x509popAttestor;
  if (!attestor) return undefined;
  const caBundle: Buffer[] = [];
  for (const path of attestor.caBundlePaths) {
    try {
      const certificates = parsePemCertificates(await readFile(path));
      if (certificates.length === 0) throw new Error('no certificates found');
      caBundle.push(...certificates);
    } catch (error) {
      throw new Error(
        `failed to configure plugin "x509pop": unable to load trust bundle "${path}": ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return { caBundle, agentPathTemplate: attestor.agentPathTemplate };
}

/** gRPC messages beyond this are refused before any handler sees them (a CSR batch fits easily). */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * tspire-server: opens the datastore, loads or creates its CA journal, keeps the entry cache, and
 * serves SPIRE's server API on TCP (mTLS, for agents) and on a Unix socket (admin).
 */
export async function startServer(
  config: ServerConfig,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.server.logLevel, 'server');
  const { trustDomain } = config.server;
  const closers: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const close of closers.reverse()) await close();
  };

  await checkServerStartup(config);
  const x509pop = await loadX509PopSettings(config);
  try {
    const store = config.plugins.dataStore;
    const datastore: Datastore = await openDatastore({
      databaseType: store.databaseType,
      connectionString: store.connectionString,
    });
    closers.push(() => datastore.close());
    logger.info({ type: store.databaseType }, 'Opened datastore');

    const keyManager: KeyManager =
      config.plugins.keyManager.name === 'disk'
        ? new DiskKeyManager(config.plugins.keyManager.keysPath)
        : new MemoryKeyManager();
    const metrics = new ServerMetrics();
    const upstreamConfig = config.plugins.upstreamAuthority;
    const upstream = upstreamConfig
      ? new UpstreamClient({
          trustDomain,
          serverAddress: upstreamConfig.serverAddress,
          serverPort: upstreamConfig.serverPort,
          workloadApiSocket: upstreamConfig.workloadApiSocket,
          logger,
        })
      : undefined;
    const ca = new CaManager({
      trustDomain,
      dataDir: config.server.dataDir,
      keyManager,
      datastore,
      caTtl: config.server.caTtl,
      serverSvidTtl: config.server.defaultX509SvidTtl,
      rotationCheckIntervalMs: config.server.experimental.caRotationCheckInterval * 1000,
      metrics,
      logger,
      ...(upstream ? { upstream } : {}),
    });
    await ca.start();
    closers.push(() => ca.stop());

    // As in SPIRE, the entry cache tolerates stale reads: with a read-only copy configured it
    // reloads from there, so it stays current while the primary is down.
    let entrySource: EntrySource = datastore.entries;
    if (store.roConnectionString !== undefined) {
      const readOnly = await openDatastore({
        databaseType: store.databaseType,
        connectionString: store.roConnectionString,
        readOnly: true,
      });
      closers.push(() => readOnly.close());
      logger.info('Opened read-only datastore for the entry cache');
      // The first load reads the primary: the replica may not have replayed the schema just migrated.
      let loads = 0;
      entrySource = {
        listAll: () => (loads++ === 0 ? datastore.entries : readOnly.entries).listAll(),
      };
    }
    const entries = new EntryCache(entrySource, config.server.experimental.entryCacheReloadInterval * 1000, {
      reloaded: (count) => metrics.entryCacheReloaded(count),
      reloadFailed: (error) => {
        metrics.entryCacheReloadFailed();
        logger.error({ err: (error as Error).message }, 'Failed to reload entry cache');
      },
    });
    await entries.start();
    closers.push(() => entries.stop());

    const peers = new PeerTaggedServer({
      grpc: {
        'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
        'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      },
      onRefused: (_peer, reason) => logger.debug({ reason }, 'Closed an API connection'),
      admitTls: async (peer) => {
        if (peer.kind !== 'tls' || peer.certificateChain.length === 0) return undefined;
        try {
          await ca.bundle();
          return undefined;
        } catch (error) {
          return `TLS handshake refused: get bundle from datastore: ${(error as Error).message}`;
        }
      },
    });
    closers.push(() => peers.close());
    const stalenessMs = config.server.maxAttestedNodeInfoStaleness * 1000;
    let nodeCache: AttestedNodeCache | undefined;
    if (stalenessMs > 0) {
      nodeCache = new AttestedNodeCache(datastore.nodes, (error) =>
        logger.error({ err: (error as Error).message }, 'Fail to rebuild the attested node cache'),
      );
      await nodeCache.start();
      closers.push(() => nodeCache?.stop());
    }
    const auth = new ApiAuthorization(
      peers,
      new AgentAuthorizer(
        trustDomain,
        datastore.nodes,
        () => ca.bundle(),
        logger,
        nodeCache
          ? { cache: nodeCache, stalenessMs, onCacheHit: () => metrics.authorizedFromNodeCache() }
          : undefined,
      ),
      new DownstreamAuthorizer(
        trustDomain,
        (id) => entries.isDownstream(id),
        () => ca.bundle(),
      ),
    );
    const observe: RpcObserver = (service, method, status, seconds, error) => {
      metrics.rpc.record(service, method, status, seconds);
      if (error && status !== 'OK')
        logger.debug(
          { method: `${service}/${method}`, status, err: (error as Error).message },
          'Request failed',
        );
    };
    const common = { auth, observe, logger };
    // SPIRE's gRPC health check: the bundle read from the datastore itself, not through its cache.
    const bundleProblem = () =>
      datastore.bundles.get(trustDomain).then(
        (bundle) => (bundle ? undefined : 'bundle is missing'),
        () => 'unable to fetch bundle',
      );
    addImplementedMethods(
      peers.grpcServer,
      agentServiceDefinition,
      agentService({
        ...common,
        ca,
        datastore,
        entries,
        trustDomain,
        agentTtl: config.server.agentTtl,
        ...(x509pop ? { x509pop } : {}),
      }),
    );
    addImplementedMethods(
      peers.grpcServer,
      entryServiceDefinition,
      entryService({ ...common, datastore, cache: entries, trustDomain }),
    );
    addImplementedMethods(
      peers.grpcServer,
      svidServiceDefinition,
      svidService({
        ...common,
        ca,
        entries,
        defaultX509SvidTtl: config.server.defaultX509SvidTtl,
        defaultJwtSvidTtl: config.server.defaultJwtSvidTtl,
        caTtl: config.server.caTtl,
        trustDomain,
        metrics,
      }),
    );
    addImplementedMethods(peers.grpcServer, bundleServiceDefinition, bundleService({ ...common, ca }));
    addImplementedMethods(
      peers.grpcServer,
      localAuthorityServiceDefinition,
      localAuthorityService({ ...common, ca }),
    );
    addImplementedMethods(peers.grpcServer, loggerServiceDefinition, loggerService(common));
    addImplementedMethods(
      peers.grpcServer,
      healthServiceDefinition,
      healthService({ bundleProblem, logger, observe }),
    );

    const port = await peers.listenTls(
      config.server.bindAddress,
      config.server.bindPort,
      ca.serverTlsIdentity(),
    );
    ca.onServerIdentityChange((identity: TlsIdentity) => peers.setTlsIdentity(identity));
    await peers.listenUnix(config.server.socketPath, 0o770);
    logger.info({ address: `${config.server.bindAddress}:${port}`, network: 'tcp' }, 'Starting Server APIs');
    logger.info({ address: config.server.socketPath, network: 'unix' }, 'Starting Server APIs');

    const telemetry = await startTelemetryListeners({
      telemetry: config.telemetry,
      healthChecks: config.healthChecks,
      registry: metrics.registry,
      // As SPIRE's checks, liveness and readiness both need the CA to sign (ca-manager.ts).
      live: async () => Object.keys(ca.healthProblems()).length === 0,
      ready: async () => {
        const datastoreOk = await datastore.sql.query('SELECT 1').then(
          () => true,
          () => false,
        );
        const caProblems = ca.healthProblems();
        return {
          ready: datastoreOk && Object.keys(caProblems).length === 0,
          datastore: datastoreOk,
          ...caProblems,
          entry_cache_loaded_at: new Date(entries.lastReload).toISOString(),
        };
      },
    });
    closers.push(() => telemetry.close());

    let stopped = false;
    return {
      port,
      socketPath: config.server.socketPath,
      ...(telemetry.metricsPort !== undefined ? { metricsPort: telemetry.metricsPort } : {}),
      ...(telemetry.healthPort !== undefined ? { healthPort: telemetry.healthPort } : {}),
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
        logger.info('Server stopped');
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
