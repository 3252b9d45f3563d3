import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRunDir } from '../support/run-dir.js';
import { runSpireDrill } from '../support/spire-drill-process.js';
import { pinnedTool } from '../support/tools.js';

/**
 * `drill run lb-down --outage short --json` as a CI job runs it (its own dev server and worker, a
 * fresh demo deployment): progress streams as JSON lines on stderr, one at least per drill phase,
 * and stdout holds exactly one JSON document, the result.
 */
const temporal = pinnedTool('temporal');
if (temporal.missing) console.warn(`skipping: ${temporal.missing}`);
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping: downstream servers run under their own group id, which needs root');

const PHASES = [
  'planning',
  'steady-state',
  'injecting',
  'holding',
  'healing',
  'recovering',
  'concluding',
  'done',
];

describe.skipIf(!!temporal.missing || !isRoot)('drill run --json', () => {
  it(
    'streams progress on stderr and prints one result on stdout',
    async () => {
      const run = makeRunDir('sdjp-');
      try {
        const env: NodeJS.ProcessEnv = { ...process.env, SPIRE_DRILL_HOME: join(run.dir, 'deployments') };
        delete env.TEMPORAL_ADDRESS;
        delete env.SPIRE_DRILL_RESULTS_URL;
        const result = await runSpireDrill(['drill', 'run', 'lb-down', '--outage', 'short', '--json'], {
          env,
          timeoutMs: 8 * 60_000,
        });
        const context = `exit ${result.code}\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-3000)}`;
        const document = JSON.parse(result.stdout) as {
          verdict: string;
          scenario: string;
          workloads: { predicted: { loss: string } }[];
        };
        expect(document.scenario, context).toBe('lb-down');
        expect(result.stdout.trim().split('\n'), context).toHaveLength(1);
        expect(result.code, context).toBe(0);

        const progress = result.stderr
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { at: string; phase: string; step: string; runId?: string });
        for (const line of progress) {
          expect(Number.isNaN(Date.parse(line.at)), JSON.stringify(line)).toBe(false);
          expect(typeof line.step).toBe('string');
        }
        const drillPhases = new Set(progress.filter((p) => p.runId).map((p) => p.phase));
        for (const phase of PHASES) expect([...drillPhases], context).toContain(phase);
        // After the heal, progress states the prediction the result is judged by: the same count.
        const predictions = progress
          .map((p) => /the model predicts (\d+) of (\d+) workloads? may lose identity$/.exec(p.step))
          .filter((m) => m !== null);
        expect(predictions.length, context).toBeGreaterThan(0);
        const judged = document.workloads.filter((w) => w.predicted.loss !== 'never').length;
        expect(Number(predictions.at(-1)![1]), context).toBe(judged);
        expect(Number(predictions.at(-1)![2]), context).toBe(document.workloads.length);
        // The suite that spins the deployment up and tears it down reports too, before and after.
        expect(progress[0]?.phase, context).toBe('suite');
        expect(progress.at(-1)?.phase, context).toBe('suite');
      } finally {
        run.remove();
      }
    },
    10 * 60_000,
  );
});
