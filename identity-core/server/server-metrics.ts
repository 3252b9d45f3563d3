import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { RpcMetrics } from '../telemetry/rpc-metrics.js';

/** The server's Prometheus registry; names follow SPIRE's telemetry keys with dots as underscores. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly rpc: RpcMetrics;
  private readonly x509SvidSigned: Counter;
  private readonly jwtSvidSigned: Counter;
  private readonly downstreamX509CaSigned: Counter;
  private readonly x509CaPrepared: Counter;
  private readonly x509CaActivated: Counter;
  private readonly jwtKeyPrepared: Counter;
  private readonly jwtKeyActivated: Counter;
  private readonly x509CaTtl: Gauge;
  private readonly entryCacheEntries: Gauge;
  private readonly entryCacheReloadFailures: Counter;
  private readonly nodeCacheAuthorizations: Counter;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'spire_server_' });
    const r = [this.registry];
    this.rpc = new RpcMetrics(this.registry, 'spire_server');
    this.x509SvidSigned = new Counter({
      name: 'spire_server_server_ca_sign_x509_svid',
      help: 'X509-SVIDs signed',
      registers: r,
    });
    this.downstreamX509CaSigned = new Counter({
      name: 'spire_server_server_ca_sign_downstream_x509_ca',
      help: 'Intermediate CAs signed for downstream servers',
      registers: r,
    });
    this.jwtSvidSigned = new Counter({
      name: 'spire_server_server_ca_sign_jwt_svid',
      help: 'JWT-SVIDs signed',
      registers: r,
    });
    this.x509CaPrepared = new Counter({
      name: 'spire_server_ca_manager_x509_ca_prepare',
      help: 'X.509 authorities prepared',
      registers: r,
    });
    this.x509CaActivated = new Counter({
      name: 'spire_server_ca_manager_x509_ca_activate',
      help: 'X.509 authorities activated',
      registers: r,
    });
    this.jwtKeyPrepared = new Counter({
      name: 'spire_server_ca_manager_jwt_key_prepare',
      help: 'JWT authorities prepared',
      registers: r,
    });
    this.jwtKeyActivated = new Counter({
      name: 'spire_server_ca_manager_jwt_key_activate',
      help: 'JWT authorities activated',
      registers: r,
    });
    this.x509CaTtl = new Gauge({
      name: 'spire_server_manager_x509_ca_rotate_ttl',
      help: 'Seconds left on the active X.509 authority',
      registers: r,
    });
    this.entryCacheEntries = new Gauge({
      name: 'spire_server_entry_cache_entries',
      help: 'Entries in the in-memory entry cache',
      registers: r,
    });
    this.entryCacheReloadFailures = new Counter({
      name: 'spire_server_entry_cache_reload_failures',
      help: 'Failed reloads of the entry cache from the datastore',
      registers: r,
    });
    this.nodeCacheAuthorizations = new Counter({
      name: 'spire_server_node_cache_authorized_agent_calls',
      help: 'Agent calls authorized from the attested node cache without reading the datastore',
      registers: r,
    });
  }

  signedX509Svid(): void {
    this.x509SvidSigned.inc();
  }
  signedDownstreamX509Ca(): void {
    this.downstreamX509CaSigned.inc();
  }
  signedJwtSvid(): void {
    this.jwtSvidSigned.inc();
  }
  preparedX509Ca(): void {
    this.x509CaPrepared.inc();
  }
  activatedX509Ca(ttlSeconds: number): void {
    this.x509CaActivated.inc();
    this.x509CaTtl.set(ttlSeconds);
  }
  preparedJwtKey(): void {
    this.jwtKeyPrepared.inc();
  }
  activatedJwtKey(): void {
    this.jwtKeyActivated.inc();
  }
  activeX509CaTtl(seconds: number): void {
    this.x509CaTtl.set(seconds);
  }
  entryCacheReloaded(count: number): void {
    this.entryCacheEntries.set(count);
  }
  entryCacheReloadFailed(): void {
    this.entryCacheReloadFailures.inc();
  }
  authorizedFromNodeCache(): void {
    this.nodeCacheAuthorizations.inc();
  }
}
