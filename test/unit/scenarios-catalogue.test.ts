import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  catalogue,
  loadScenario,
  loadScenarioFile,
  parseScenario,
  ScenarioError,
} from '../../scenarios/scenario.js';
import { loadSuite } from '../../scenarios/suite.js';
import { repoRoot } from '../support/tools.js';
import { CATALOGUE } from '../support/suite-checks.js';

const dirs = {
  catalogue: join(repoRoot, 'scenarios', 'catalogue'),
  suites: join(repoRoot, 'scenarios', 'suites'),
  root: repoRoot,
};

const issues = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ScenarioError) return error.issues;
    throw error;
  }
  throw new Error('accepted');
};

describe('the scenario catalogue', () => {
  it('holds every scenario the issue names, each valid and named as its file', async () => {
    const names = [...(await catalogue(dirs.catalogue)).keys()];
    expect(names).toEqual(CATALOGUE);
    for (const name of names) {
      const scenario = await loadScenario(name, dirs.catalogue);
      expect(scenario.name).toBe(name);
      expect(scenario.expectations.length).toBeGreaterThan(0);
    }
  });

  it('resolves the ci, full and smoke suites to every scenario at their classes', async () => {
    const ci = await loadSuite('ci', dirs);
    expect(ci.drills).toHaveLength(18);
    expect(new Set(ci.drills.map((d) => d.outage))).toEqual(new Set(['short', 'long']));
    expect(ci.topologyPath).toBe(join(repoRoot, 'topologies', 'demo.yaml'));
    expect((await loadSuite('full', dirs)).drills).toHaveLength(27);
    const smoke = await loadSuite('smoke', dirs);
    expect(smoke.drills.map((d) => `${d.scenario.name} ${d.outage}`)).toEqual(
      [...new Set(ci.drills.map((d) => d.scenario.name))].map((name) => `${name} short`),
    );
    await expect(loadSuite('nightly', dirs)).rejects.toThrow(/no such suite: known are ci, full, smoke/);
  });

  it('refuses bad scenarios with the field and the reason', async () => {
    const base = {
      name: 'x',
      description: 'y',
      fault: { kind: 'lb-down', group: 'upstream' },
      expectations: [{ expect: 'recovers' }],
    };
    expect(issues(() => parseScenario({ ...base, fault: { kind: 'meteor', group: 'upstream' } }))[0]).toMatch(
      /^fault.kind: unknown fault kind/,
    );
    expect(issues(() => parseScenario({ ...base, expectations: [] }))[0]).toMatch(/without expectations/);
    const restore = { kind: 'db-restore', group: 'upstream', backupAge: '15s' };
    expect(parseScenario({ ...base, fault: restore }).fault).toEqual({
      ...restore,
      backupAge: 15,
      registerAfterBackup: 1,
    });
    expect(
      issues(() => parseScenario({ ...base, fault: { ...restore, backupAge: 'yesterday' } }))[0],
    ).toMatch(/^fault.backupAge: invalid duration "yesterday"/);
    expect(
      issues(() => parseScenario({ ...base, fault: { ...restore, registerAfterBackup: -1 } }))[0],
    ).toMatch(/^fault.registerAfterBackup: cannot be negative/);
    expect(issues(() => parseScenario({ ...base, expectations: [{ expect: 'miracles' }] }))[0]).toMatch(
      /unknown expectation/,
    );
    expect(issues(() => parseScenario({ ...base, outage: { long: '1x' } }))[0]).toMatch(/^outage.long/);
    expect(issues(() => parseScenario({ ...base, extra: 1 }))[0]).toMatch(/extra/);
    expect(
      issues(() =>
        parseScenario({ ...base, expectations: [{ expect: 'handshake-success', phase: 'fault', min: 2 }] }),
      )[0],
    ).toMatch(/between 0 and 1/);
    const dir = mkdtempSync(join(tmpdir(), 'sdsc-'));
    writeFileSync(join(dir, 'broken.yaml'), 'name: [unclosed');
    await expect(loadScenarioFile(join(dir, 'broken.yaml'))).rejects.toThrow(/not valid YAML/);
    await expect(loadScenario('nope', dirs.catalogue)).rejects.toThrow(/known are agent-down/);
    expect(parseScenario({ ...base, outage: { long: { ttl: 2 }, short: '5s' } }).outage).toEqual({
      long: { ttl: 2 },
      short: { seconds: 5 },
    });
  });
});
