import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeRunDir } from '../support/run-dir.js';
import { runSpireDrill } from '../support/spire-drill-process.js';
import { pinnedTool } from '../support/tools.js';
import { processesUsing } from '../support/host.js';

/**
 * `spire-drill fidelity run` end to end on a one-drill suite (agent-down at short) and a small
 * topology (embedded datastores: PGlite for the bundled SPIRE, SQLite for real SPIRE), through the CLI
 * with its own dev server and worker, as a CI job runs it: the bundled SPIRE, then real SPIRE v1.13.3.
 * Each side is a fresh deployment, torn down before the next spins up, and nothing is left. Where the
 * two differ, each difference carries what both runs showed.
 */
const temporal = pinnedTool('temporal');
if (temporal.missing) console.warn(`skipping: ${temporal.missing}`);
const spire = pinnedTool('spire-server');
if (spire.missing) console.warn(`skipping: ${spire.missing}`);
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping: downstream servers run under their own group id, which needs root');

const { TEMPORAL_ADDRESS: _ignored, SPIRE_DRILL_RESULTS_URL: _store, ...environment } = process.env;

interface FidelityJson {
  fidelityId: string;
  suite: string;
  sides: { implementation: string; suiteRunId: string; runIds: string[]; error?: string }[];
  counts: { drills: number; differences: number; errored: number };
  drills: { scenario: string; outage: string; differences: string[]; notes: string[] }[];
  report: { html: string; json: string };
}

describe.skipIf(!!temporal.missing || !!spire.missing || !isRoot)(
  'fidelity run, bundled beside real SPIRE',
  () => {
    const run = makeRunDir('sdfi-');
    const home = join(run.dir, 'deployments');
    const cli = (args: string[], timeoutMs: number) =>
      runSpireDrill(args, { env: { ...environment, SPIRE_DRILL_HOME: home }, timeoutMs, cwd: run.dir });
    afterAll(() => run.remove());

    it('runs the suite on each side, stores the pair, and reports them side by side', async () => {
      const topology = join(run.dir, 'small.yaml');
      writeFileSync(
        topology,
        [
          'name: small',
          'trustDomain: small.spire-drill.test',
          'ttls: { x509Svid: 20s, jwtSvid: 20s, agentSvid: 5m, ca: 3h, downstreamCa: 30m }',
          'syncInterval: 1s',
          'upstream: { servers: 1, datastore: embedded, agents: 0 }',
          'downstreams: [{ name: east, agents: 1, workloadsPerAgent: 2 }]',
          '',
        ].join('\n'),
      );
      const suite = join(run.dir, 'tiny.yaml');
      writeFileSync(
        suite,
        'name: tiny\ndescription: One drill, for the fidelity test.\nscenarios: [agent-down]\noutages: [short]\n',
      );
      const reportDir = join(run.dir, 'report');
      const result = await cli(
        [
          'fidelity',
          'run',
          suite,
          '--topology',
          topology,
          '--implementations',
          'tspire,spire',
          '--report',
          reportDir,
          '--json',
        ],
        20 * 60_000,
      );
      const context = `exit ${result.code}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-4000)}`;
      expect(result.code, context).toBe(0);
      const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as FidelityJson;
      expect(summary.suite).toBe('tiny');
      expect(summary.sides.map((s) => s.implementation)).toEqual(['tspire', 'spire']);
      expect(summary.sides.map((s) => s.runIds.length)).toEqual([1, 1]);
      expect(summary.sides[0]!.suiteRunId).not.toBe(summary.sides[1]!.suiteRunId);
      expect(summary.sides.every((s) => s.error === undefined)).toBe(true);
      expect(summary.counts.drills).toBe(1);
      expect(summary.counts.errored, JSON.stringify(summary.drills)).toBe(0);
      expect(summary.counts.differences).toBe(summary.drills[0]!.differences.length);

      const report = JSON.parse(readFileSync(join(reportDir, 'fidelity.json'), 'utf8'));
      expect(report.thresholdSeconds).toBe(1);
      const [drill] = report.drills;
      expect([drill.scenario, drill.outage]).toEqual(['agent-down', 'short']);
      // A flagged difference names what each side showed.
      for (const difference of drill.differences as { summary: string; evidence: string[] }[]) {
        expect(difference.summary).not.toBe('');
        expect(difference.evidence).toHaveLength(2);
        for (const shown of difference.evidence) expect(shown).not.toBe('');
      }
      // Both sides measured the same two workloads of east, and each reached a verdict.
      for (const side of drill.sides) expect(['passed', 'failed']).toContain(side.verdict);
      expect(drill.workloads.map((w: { spiffeId: string }) => w.spiffeId)).toEqual([
        'spiffe://small.spire-drill.test/east/agent-0/workload-0',
        'spiffe://small.spire-drill.test/east/agent-0/workload-1',
      ]);
      for (const w of drill.workloads) expect(w.sides.every(Boolean)).toBe(true);
      const html = readFileSync(join(reportDir, 'fidelity.html'), 'utf8');
      expect(html).toContain(
        `data-scenario="agent-down" data-outage="short" data-agree="${drill.differences.length === 0}"`,
      );

      // Kept in the results store: listed, and rendered again by `report`.
      const listed = await cli(['fidelity', 'list', '--json'], 60_000);
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([
        expect.objectContaining({ fidelityId: summary.fidelityId, drills: 1 }),
      ]);
      const again = await cli(['report', summary.fidelityId, '--out', join(run.dir, 'again')], 60_000);
      expect(again.code, again.stderr).toBe(0);
      expect(existsSync(join(run.dir, 'again', 'fidelity.html'))).toBe(true);

      // Both deployments torn down: no process of the run is left.
      expect(processesUsing(home)).toEqual([]);
    });
  },
);
