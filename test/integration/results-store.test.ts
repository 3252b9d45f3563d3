import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkResultsStore, withResults } from '../../results/results-store.js';
import type { DrillRecord } from '../../scenarios/drill-record.js';
import type { ProbeSample } from '../../deployment/probes/probe-sample.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { runSpireDrill } from '../support/spire-drill-process.js';

/**
 * The results store on PostgreSQL (SPIRE_DRILL_RESULTS_URL): a run and its samples stored, replaced
 * by a retried conclusion rather than doubled, listed and found by suite; and a store that cannot be
 * used refused before a drill or suite starts anything.
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
