import { Counter, Histogram, type Registry } from 'prom-client';

/** `<prefix>_rpc_<service>_<method>` with a status label, as SPIRE's go-metrics Prometheus sink names RPC counters. */
export class RpcMetrics {
  private readonly calls: Counter<'service' | 'method' | 'status'>;
  private readonly elapsed: Histogram<'service' | 'method' | 'status'>;

  constructor(registry: Registry, prefix: string) {
    this.calls = new Counter({
      name: `${prefix}_rpc_calls_total`,
      help: 'gRPC calls handled, by service, method and status code',
      labelNames: ['service', 'method', 'status'],
      registers: [registry],
    });
    this.elapsed = new Histogram({
      name: `${prefix}_rpc_elapsed_time_seconds`,
      help: 'Time spent in gRPC handlers',
      labelNames: ['service', 'method', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
  }

  record(service: string, method: string, status: string, seconds: number): void {
    this.calls.inc({ service, method, status });
    this.elapsed.observe({ service, method, status }, seconds);
  }
}
