/**
 * A fidelity run's side-by-side report from the results store: its record, both sides' drill runs
 * with their samples, compared (reports/fidelity-comparison.ts) and written as fidelity.html and
 * fidelity.json. Shared by `fidelity run`, which renders right after storing, and `report <id>`.
 */
import { resolve } from 'node:path';
import { compareFidelity, type FidelityComparison, type StoredRun } from '../reports/fidelity-comparison.js';
import { writeFidelityReport } from '../reports/write-report.js';
import { withResults } from '../results/results-store.js';
import type { FidelityRecord, FidelitySummary } from '../scenarios/fidelity-record.js';
import { CliFailure } from './cli-support.js';

export interface FidelityResults {
  comparison: FidelityComparison;
  runs: [StoredRun[], StoredRun[]];
}

/** Both sides' stored runs, compared. A run listed in the record but missing from the store is an error. */
export async function compareStored(record: FidelityRecord): Promise<FidelityResults> {
  const runs = await withResults(async (store) => {
    const load = async (runIds: string[]) => {
      const found: StoredRun[] = [];
      for (const runId of runIds) {
        const run = await store.drill(runId);
        if (!run)
          throw new CliFailure(`fidelity run ${record.fidelityId}: drill run ${runId} is not stored`, 2);
        found.push({ drill: run.record, samples: run.samples });
      }
      return found;
    };
    return [await load(record.sides[0].runIds), await load(record.sides[1].runIds)] as [
      StoredRun[],
      StoredRun[],
    ];
  });
  return { comparison: compareFidelity(record, runs), runs };
}

export function fidelitySummary(comparison: FidelityComparison): FidelitySummary {
  return {
    drills: comparison.drills.length,
    differences: comparison.differences,
    errored: comparison.drills.filter((d) => d.sides.some((side) => side?.verdict === 'errored')).length,
  };
}

/** Writes the report of `results` into `dir`; returns the paths. */
export function writeFidelity(dir: string, results: FidelityResults): { html: string; json: string } {
  return writeFidelityReport(resolve(dir), results.comparison, results.runs.flat());
}

/** The stored fidelity run `fidelityId`, or undefined when there is none. */
export async function storedFidelity(fidelityId: string): Promise<FidelityRecord | undefined> {
  return withResults((store) => store.fidelity(fidelityId));
}
