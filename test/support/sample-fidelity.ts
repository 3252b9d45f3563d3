import type { StoredRun } from '../../reports/fidelity-comparison.js';
import type { DrillRecord } from '../../scenarios/drill-record.js';
import type { FidelityRecord } from '../../scenarios/fidelity-record.js';
import { sampleSuite } from './sample-suite.js';

/**
 * A fidelity run for the comparison and report tests, built from the hand-made suite of
 * sample-suite.ts: side "tspire" is that suite as it is, side "spire" a copy of it that each test
 * changes (`alter`) to show the difference it checks. The topology's sync interval is 1 s.
 */
export const SYNC_INTERVAL = 1;

export function fidelityRecord(runIds: [string[], string[]]): FidelityRecord {
  return {
    fidelityId: 'fidelity-ci-0a1b2c',
    suite: 'ci',
    topology: '/srv/spire-drill/topologies/demo.yaml',
    topologyName: 'demo',
    syncIntervalSeconds: SYNC_INTERVAL,
    startedAt: Date.UTC(2026, 10, 26, 6, 0, 0),
    finishedAt: Date.UTC(2026, 10, 26, 6, 20, 0),
    sides: [
      { implementation: 'tspire', suiteRunId: 'fidelity-ci-0a1b2c-1-tspire', runIds: runIds[0] },
      { implementation: 'spire', suiteRunId: 'fidelity-ci-0a1b2c-2-spire', runIds: runIds[1] },
    ],
  };
}

/** Both sides, the second's drills passed through `alter` (a deep copy, its run ids suffixed "-spire"). */
export function sampleFidelity(alter: (drill: DrillRecord) => DrillRecord | undefined = (d) => d): {
  record: FidelityRecord;
  runs: [StoredRun[], StoredRun[]];
} {
  const { suite, samples } = sampleSuite();
  const left = suite.drills.map((drill) => ({ drill, samples: samples[drill.runId] ?? [] }));
  const right = suite.drills.flatMap((original) => {
    const drill = alter({ ...structuredClone(original), runId: `${original.runId}-spire` });
    return drill ? [{ drill, samples: samples[original.runId] ?? [] }] : [];
  });
  return {
    record: fidelityRecord([left.map((r) => r.drill.runId), right.map((r) => r.drill.runId)]),
    runs: [left, right],
  };
}
