import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { RpcMetrics } from '../telemetry/rpc-metrics.js';

/** The agent's Prometheus registry; names follow SPIRE's agent telemetry keys. */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly rpc: RpcMetrics;
  readonly agentSvidRotations: Counter;
  readonly syncs: Counter<'result'>;
  readonly expiringSvids: Gauge;
  readonly taintedWorkloadSvids: Counter;
  readonly taintedJwtSvids: Counter;
  readonly workloadConnections: Gauge;
  readonly cachedSvids: Gauge;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'spire_agent_' });
    this.rpc = new RpcMetrics(this.registry, 'spire_agent');
    this.agentSvidRotations = new Counter({
      name: 'spire_agent_agent_svid_rotate',
      help: 'Agent SVID rotations',
      registers,
    });
    this.syncs = new Counter({
      name: 'spire_agent_manager_sync_fetch_entries_updates',
      help: 'Syncs with the server, by result',
      labelNames: ['result'],
      registers,
    });
    this.expiringSvids = new Gauge({
      name: 'spire_agent_cache_manager_expiring_svids',
      help: 'Workload SVIDs due for renewal at the last sync',
      registers,
    });
    this.taintedWorkloadSvids = new Counter({
      name: 'spire_agent_cache_manager_tainted_x509_svids_workload',
      help: 'Workload X509-SVIDs dropped because they chain to a tainted authority',
      registers,
    });
    this.taintedJwtSvids = new Counter({
      name: 'spire_agent_cache_manager_tainted_jwt_svids',
      help: 'Cached JWT-SVIDs dropped because a tainted key signed them',
      registers,
    });
    this.workloadConnections = new Gauge({
      name: 'spire_agent_workload_api_connection',
      help: 'Open Workload API streams',
      registers,
    });
    this.cachedSvids = new Gauge({
      name: 'spire_agent_cache_manager_svids',
      help: 'Workload X509-SVIDs held in the cache',
      registers,
    });
  }
}
