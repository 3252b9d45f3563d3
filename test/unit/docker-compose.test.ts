import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../workflows/search-attributes.js';
import { repoRoot } from '../support/tools.js';

interface Service {
  image?: string;
  ports?: string[];
  command?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
}

/** No Docker engine runs here, so the compose file is checked as data: services, ports, wiring. */
describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, Service>;
    volumes: Record<string, unknown>;
  };
  const services = compose.services;

  it('runs Temporal on PostgreSQL, its Web UI and a worker', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['postgresql', 'search-attributes', 'temporal', 'temporal-ui', 'worker'].sort(),
    );
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(services.temporal!.ports).toContain('7233:7233');
    expect(services['temporal-ui']!.ports).toContain('8080:8080');
    for (const service of Object.values(services)) expect(service.image).toMatch(/^[\w./-]+:[\w.-]+$/);
    expect(Object.keys(compose.volumes)).toContain('temporal-db');
  });

  it("starts the project's worker against the compose Temporal, after the search attributes exist", () => {
    const worker = services.worker!;
    expect(String(worker.command)).toContain('node bin/spire-drill.js worker');
    expect(worker.environment).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233' });
    expect(worker.depends_on).toMatchObject({
      'search-attributes': { condition: 'service_completed_successfully' },
    });
    const registration = String(services['search-attributes']!.command);
    for (const attribute of SEARCH_ATTRIBUTE_REGISTRATIONS) {
      const [name, type] = attribute.split('=');
      expect(registration).toContain(name);
      expect(registration).toContain(`--type ${type}`);
    }
  });
});
