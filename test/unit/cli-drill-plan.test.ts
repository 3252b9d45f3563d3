import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plannedTarget } from '../../cli/plan-targets.js';
import { plural } from '../../scenarios/plural.js';
import { repoRoot } from '../support/tools.js';
import { runCli as run } from '../support/cli-in-process.js';

describe('drill plan', () => {
  const demo = join(repoRoot, 'topologies', 'demo.yaml');

  it.each(['short', 'long'])(
    'plans db-primary-down at %s on the demo topology, which has a managed datastore and a replica',
    async (outage) => {
      const result = await run(['drill', 'plan', 'db-primary-down', '--outage', outage]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`  topology: ${demo}\n`);
      expect(result.stdout).toMatch(
        /targets: PostgreSQL primary \(port chosen at spin-up; the datastore of upstream, east; the replica \(port chosen at spin-up\) stays up\)/,
      );
    },
  );

  it('names the topology it planned for in JSON too', async () => {
    const result = await run(['drill', 'plan', 'lb-down', '--outage', 'short', '--topology', demo, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { topology: string }).topology).toBe(demo);
  });

  it('words counts and ports as a reader would', async () => {
    const result = await run(['drill', 'plan', 'db-restore', '--outage', 'short']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('backup, 1 identity registered after it');
    expect(result.stdout).not.toMatch(/\((s|ies)\)|a port chosen/);
    expect(result.stdout).toContain('PostgreSQL (port chosen at spin-up; the datastore of upstream, east)');
  });
});

describe('wording', () => {
  it('agrees a count with its noun', () => {
    expect(plural(1, 'identity', 'identities')).toBe('1 identity');
    expect(plural(2, 'identity', 'identities')).toBe('2 identities');
    expect(plural(0, 'workload')).toBe('0 workloads');
  });
  it('says where an unbound port would stand that it is chosen at spin-up', () => {
    expect(plannedTarget('upstream server 0 (127.0.0.1:0)')).toBe(
      'upstream server 0 (port chosen at spin-up)',
    );
    expect(plannedTarget('PostgreSQL 127.0.0.1:0 (the datastore of upstream)')).toBe(
      'PostgreSQL (port chosen at spin-up; the datastore of upstream)',
    );
    expect(plannedTarget('the replica on 127.0.0.1:0 stays up')).toBe(
      'the replica (port chosen at spin-up) stays up',
    );
    expect(plannedTarget('PostgreSQL 127.0.0.1:5432 (x)')).toBe('PostgreSQL 127.0.0.1:5432 (x)');
  });
});
