import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSince } from '../../cli/drill-list.js';
import { withResults } from '../../results/results-store.js';
import { FAILED_RUN, PASSED_RUN, SUITE_START, sampleSuite } from '../support/sample-suite.js';
import { runCli as run } from '../support/cli-in-process.js';

describe('parseSince', () => {
  const now = Date.UTC(2026, 11, 5, 12, 0, 0);
  it('takes a duration back from now, days included, or an ISO date', () => {
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('36h', now)).toBe(now - 36 * 3_600_000);
    expect(parseSince('1h30m', now)).toBe(now - 90 * 60_000);
    expect(parseSince('2026-11-01', now)).toBe(Date.UTC(2026, 10, 1));
    expect(parseSince('2026-11-01T06:00:00Z', now)).toBe(Date.UTC(2026, 10, 1, 6));
  });
  it('refuses anything else, saying what it expects', () => {
    for (const bad of ['yesterday', '-5m', '2026-13-45', ''])
      expect(() => parseSince(bad, now)).toThrow(/^--since: expected a duration back from now/);
  });
});

describe('drill list', () => {
  const home = mkdtempSync(join(tmpdir(), 'cli-list-'));
  const saved = { ...process.env };

  beforeAll(async () => {
    process.env.SPIRE_DRILL_HOME = join(home, 'deployments');
    delete process.env.SPIRE_DRILL_RESULTS_URL;
    const { suite, samples } = sampleSuite();
    await withResults(async (store) => {
      for (const record of suite.drills) await store.saveDrill(record, samples[record.runId] ?? [], 'sample');
    });
  }, 120_000);
  afterAll(() => {
    process.env = saved;
    rmSync(home, { recursive: true, force: true });
  });

  it('prints a header and a row per run with scenario, outage, verdict, start, duration, deployment', async () => {
    const result = await run(['drill', 'list']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^RUN ID\s+SCENARIO\s+OUTAGE\s+VERDICT\s+STARTED \(UTC\)\s+DURATION\s+DEPLOYMENT$/,
    );
    expect(lines).toHaveLength(3);
    const failed = lines.find((l) => l.startsWith(FAILED_RUN))!;
    expect(failed).toMatch(
      /\blb-down\s+long\s+failed\s+2026-11-26 \d\d:\d\d:\d\d\s+\d+ (s|min \d\d s)\s+demo-7f3a$/,
    );
    // Columns line up under the header.
    expect(failed.indexOf('failed')).toBe(lines[0]!.indexOf('VERDICT'));
  });

  it('filters by scenario, verdict and start, and gives JSON', async () => {
    const failed = await run(['drill', 'list', '--verdict', 'failed', '--json']);
    expect(failed.code, failed.stderr).toBe(0);
    const rows = JSON.parse(failed.stdout) as { runId: string; deploymentId: string; finishedAt: number }[];
    expect(rows.map((r) => r.runId)).toEqual([FAILED_RUN]);
    expect(rows[0]!.deploymentId).toBe('demo-7f3a');
    expect(rows[0]!.finishedAt).toBeGreaterThan(SUITE_START);

    const none = await run(['drill', 'list', '--scenario', 'db-down']);
    expect(none.stdout.trim()).toBe('No drill runs match.');

    const since = new Date(SUITE_START + 1000).toISOString();
    const later = JSON.parse((await run(['drill', 'list', '--since', since, '--json'])).stdout) as {
      runId: string;
    }[];
    expect(later.map((r) => r.runId)).toEqual([FAILED_RUN]);
    const all = JSON.parse(
      (await run(['drill', 'list', '--since', '2026-11-01', '--json'])).stdout,
    ) as unknown[];
    expect(all).toHaveLength(2);
    expect(PASSED_RUN).not.toBe(FAILED_RUN);
  });

  it('refuses a bad verdict or --since with exit 2 and one line', async () => {
    const verdict = await run(['drill', 'list', '--verdict', 'green']);
    expect(verdict.code).toBe(2);
    expect(verdict.stderr.trim().split('\n')).toHaveLength(1);
    const since = await run(['drill', 'list', '--since', 'last week']);
    expect(since.code).toBe(2);
    expect(since.stderr.trim()).toBe(
      'spire-drill: --since: expected a duration back from now (7d, 36h, 90m) or an ISO date (2026-11-01) (got last week)',
    );
  });
});
