import type { FidelityListing } from '../results/results-store.js';
import { startedAt, textTable } from './text-table.js';

/** `fidelity list` as a table: a header, then one row per fidelity run, columns as wide as their widest cell. */
export function fidelityListTable(rows: FidelityListing[]): string[] {
  const header = [
    'FIDELITY RUN',
    'SUITE',
    'IMPLEMENTATIONS',
    'STARTED (UTC)',
    'DRILLS',
    'DIFFERENCES',
    'ERRORED',
  ];
  const cells = rows.map((r) => [
    r.fidelityId,
    r.suite,
    r.implementations.join(' · '),
    startedAt(r.startedAt),
    String(r.drills),
    String(r.differences),
    String(r.errored),
  ]);
  return textTable(header, cells);
}
