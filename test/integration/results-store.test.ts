import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkResultsStore, withResults } from '../../results/results-store.js';
import type { DrillRecord } from '../../scenarios/drill-record.js';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { runCli } from '../support/cli-in-process.js';
import { sampleFidelity } from '../support/sample-fidelity.js';
import { runSpireDrill } from '../support/spire-drill-process.js';

/**
 * The results store on PostgreSQL (SPIRE_DRILL_RESULTS_URL): a run and its samples stored, replaced
 * by a retried conclusion rather than doubled, listed and found by suite; a fidelity run linking two
 * suite runs, listed and rendered by `report`; and a store that cannot be used refused before a drill
 * or suite starts anything.
 */
const pg = await postgresAvailable();
if (!pg.ok) console.warn(`results-store tests skipped: ${pg.reason}`);

function drill(runId: string, verdict: DrillRecord['verdict'], startedAt: number): DrillRecord {
  return {
    runId,
    scenario: 'lb-down',
    description: 'the load balancer is down',
    outage: 'short',
    outageSeconds: 8,
    deploymentId: 'd-1',
    topology: 'demo',
    verdict,
    reason: 'test',
    startedAt,
    finishedAt: startedAt + 20_000,
    injections: [],
    expectations: [],
    workloads: [],
    findings: [],
  };
}

const sample = (at: number): ProbeSample => ({
  kind: 'handshake',
  workload: 'spiffe://example.org/w',
  peer: 'spiffe://example.org/p',
  at,
  ok: true,
  latencyMs: 2,
});

describe.skipIf(!pg.ok)('results store on PostgreSQL', () => {
  let database: TestDatabase;
  const before = process.env.SPIRE_DRILL_RESULTS_URL;
  beforeAll(async () => {
    database = await createTestDatabase('sd_results');
    process.env.SPIRE_DRILL_RESULTS_URL = database.connectionString;
  });
  afterAll(async () => {
    if (before === undefined) delete process.env.SPIRE_DRILL_RESULTS_URL;
    else process.env.SPIRE_DRILL_RESULTS_URL = before;
    await database?.drop();
  });

  it('stores a run with its samples, and a retried save replaces them', async () => {
    await checkResultsStore();
    const many = Array.from({ length: 1200 }, (_, i) => sample(1_000 + i));
    await withResults((store) => store.saveDrill(drill('s1-1-lb-down-short', 'failed', 1_000), many, 's1'));
    await withResults((store) =>
      store.saveDrill(drill('s1-1-lb-down-short', 'passed', 1_000), many.slice(0, 3), 's1'),
    );
    await withResults((store) => store.saveDrill(drill('s1-2-lb-down-long', 'passed', 2_000), [], 's1'));
    const found = await withResults((store) => store.drill('s1-1-lb-down-short'));
    expect(found?.record.verdict).toBe('passed');
    expect(found?.samples.map((s) => s.at)).toEqual([1_000, 1_001, 1_002]);
    expect(await withResults((store) => store.suiteRuns('s1'))).toEqual([
      's1-1-lb-down-short',
      's1-2-lb-down-long',
    ]);
    const listed = await withResults((store) => store.list());
    expect(listed.map((r) => [r.runId, r.verdict])).toEqual([
      ['s1-2-lb-down-long', 'passed'],
      ['s1-1-lb-down-short', 'passed'],
    ]);
    expect(await withResults((store) => store.drill('no-such-run'))).toBeUndefined();
  });
});

describe.skipIf(!pg.ok)('fidelity runs in the results store', () => {
  let database: TestDatabase;
  const before = process.env.SPIRE_DRILL_RESULTS_URL;
  const out = makeRunDir('sdfid-');
  beforeAll(async () => {
    database = await createTestDatabase('sd_fidelity');
    process.env.SPIRE_DRILL_RESULTS_URL = database.connectionString;
  });
  afterAll(async () => {
    if (before === undefined) delete process.env.SPIRE_DRILL_RESULTS_URL;
    else process.env.SPIRE_DRILL_RESULTS_URL = before;
    await database?.drop();
    out.remove();
  });

  it('keeps a fidelity run, lists it, and renders it with `report`', async () => {
    const { record, runs } = sampleFidelity((d) => ({
      ...d,
      verdict: 'passed',
      reason: 'every expectation met',
    }));
    await withResults(async (store) => {
      for (const [side, list] of runs.entries())
        for (const run of list) await store.saveDrill(run.drill, run.samples, record.sides[side]!.suiteRunId);
      await store.saveFidelity(record, { drills: 2, differences: 9, errored: 0 });
      // A retried save replaces the counts rather than adding a second row.
      await store.saveFidelity(record, { drills: 2, differences: 4, errored: 0 });
      await store.saveFidelity(
        { ...record, fidelityId: 'fidelity-ci-older', startedAt: record.startedAt - 60_000 },
        { drills: 2, differences: 0, errored: 1 },
      );
    });
    expect(await withResults((store) => store.fidelity(record.fidelityId))).toEqual(record);
    expect(await withResults((store) => store.fidelity('fidelity-none'))).toBeUndefined();

    const listed = await runCli(['fidelity', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      {
        fidelityId: record.fidelityId,
        suite: 'ci',
        startedAt: record.startedAt,
        finishedAt: record.finishedAt,
        implementations: ['tspire', 'spire'],
        drills: 2,
        differences: 4,
        errored: 0,
      },
      expect.objectContaining({ fidelityId: 'fidelity-ci-older', errored: 1 }),
    ]);
    const table = await runCli(['fidelity', 'list']);
    expect(table.stdout.split('\n')[0]).toMatch(/^FIDELITY RUN\s+SUITE\s+IMPLEMENTATIONS/);
    expect(table.stdout).toContain(`${record.fidelityId}  ci     tspire · spire`);

    // Rendered from the store: the comparison is made again from both sides' stored drills.
    const rendered = await runCli(['report', record.fidelityId, '--out', out.dir]);
    expect(rendered.code, rendered.stderr).toBe(0);
    expect(rendered.stdout.trim()).toBe(`${out.dir}/fidelity.html`);
    const json = JSON.parse(readFileSync(`${out.dir}/fidelity.json`, 'utf8'));
    expect(json.fidelity).toEqual(record);
    expect(json.drills.map((d: { sides: { runId: string }[] }) => d.sides.map((s) => s.runId))).toEqual(
      runs[0].map((r, i) => [r.drill.runId, runs[1][i]!.drill.runId]),
    );
    // The spire side's copy of the failed long drill passed: its one difference, the verdict.
    expect(json.differences).toBe(1);
    // Rendering made the comparison afresh: the listed counts follow it.
    const relisted = await runCli(['fidelity', 'list', '--json']);
    expect(JSON.parse(relisted.stdout)[0]).toMatchObject({ fidelityId: record.fidelityId, differences: 1 });
    expect(json.drills[1].differences[0].summary).toBe('failed on tspire, passed on spire');
    expect(readFileSync(`${out.dir}/fidelity.html`, 'utf8')).toContain(
      '<h1>Fidelity of suite ci: tspire beside spire</h1>',
    );
    // A suite run id of one side still renders that suite.
    const side = await runCli(['report', record.sides[1].suiteRunId!, '--out', out.dir]);
    expect(side.stdout.trim()).toBe(`${out.dir}/report.html`);
    const unknown = await runCli(['report', 'fidelity-none', '--out', out.dir]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no drill, suite or fidelity run "fidelity-none" in the results store/);
  });
});

describe('a results store that cannot be used', () => {
  const run = makeRunDir('sdrs-');
  afterAll(() => run.remove());

  it('is refused with its reason, the password hidden', async () => {
    const before = process.env.SPIRE_DRILL_RESULTS_URL;
    try {
      process.env.SPIRE_DRILL_RESULTS_URL = 'postgres://drill:secret@127.0.0.1:1/results';
      const refused = await checkResultsStore().then(
        () => undefined,
        (error: Error) => error.message,
      );
      expect(refused).toMatch(
        /^the results store at postgres:\/\/drill:\*\*\*@127\.0\.0\.1:1\/results cannot be used: /,
      );
      expect(refused).not.toContain('secret');
      process.env.SPIRE_DRILL_RESULTS_URL = 'mysql://127.0.0.1/results';
      await expect(checkResultsStore()).rejects.toThrow(/must be a postgres:\/\/ URL/);
    } finally {
      if (before === undefined) delete process.env.SPIRE_DRILL_RESULTS_URL;
      else process.env.SPIRE_DRILL_RESULTS_URL = before;
    }
  });

  it('stops `suite run` and `drill run` with exit 2 before anything starts', async () => {
    const env = {
      ...process.env,
      SPIRE_DRILL_HOME: run.dir,
      SPIRE_DRILL_RESULTS_URL: 'postgres://postgres@127.0.0.1:1/results',
    };
    for (const args of [
      ['suite', 'run', 'ci', '--report', run.dir],
      ['drill', 'run', 'lb-down', '--outage', 'short'],
    ]) {
      const result = await runSpireDrill(args, { env, timeoutMs: 60_000 });
      expect(result.code, result.stdout + result.stderr).toBe(2);
      expect(result.stderr).toMatch(
        /the results store at postgres:\/\/postgres@127\.0\.0\.1:1\/results cannot be used/,
      );
      // Neither a dev server nor a deployment was started.
      expect(result.stdout).not.toMatch(/Web UI|spinning up/);
    }
  });
});
