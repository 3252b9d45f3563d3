import type { Registry } from 'prom-client';
import type { HealthChecksConfig, TelemetryConfig } from '../config/config-fields.js';
import { serveHttp } from './http-endpoint.js';

export interface TelemetryListeners {
  metricsPort?: number;
  healthPort?: number;
  close(): Promise<void>;
}

/**
 * The optional HTTP listeners SPIRE configures in `telemetry { Prometheus {...} }` and
 * `health_checks {...}`: /metrics for scraping, and the live/ready paths answering 200 or 503.
 */
export async function startTelemetryListeners(options: {
  telemetry: TelemetryConfig;
  healthChecks: HealthChecksConfig;
  registry: Registry;
  live: () => Promise<boolean>;
  ready: () => Promise<Record<string, unknown> & { ready: boolean }>;
}): Promise<TelemetryListeners> {
  const closers: (() => Promise<void>)[] = [];
  const result: TelemetryListeners = { close: async () => void (await Promise.all(closers.map((c) => c()))) };
  const { prometheus } = options.telemetry;
  if (prometheus) {
    const server = await serveHttp(prometheus.host, prometheus.port, {
      '/metrics': async () => ({
        status: 200,
        body: await options.registry.metrics(),
        contentType: options.registry.contentType,
      }),
    });
    result.metricsPort = server.port;
    closers.push(server.close);
  }
  const health = options.healthChecks;
  if (health.listenerEnabled) {
    const server = await serveHttp(health.bindAddress, health.bindPort, {
      [health.livePath]: async () => {
        const live = await options.live();
        return { status: live ? 200 : 503, body: JSON.stringify({ live }) };
      },
      [health.readyPath]: async () => {
        const details = await options.ready();
        return { status: details.ready ? 200 : 503, body: JSON.stringify(details) };
      },
    });
    result.healthPort = server.port;
    closers.push(server.close);
  }
  return result;
}
