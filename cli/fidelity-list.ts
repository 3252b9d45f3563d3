import type { FidelityListing } from '../results/results-store.js';

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
    new Date(r.startedAt).toISOString().slice(0, 19).replace('T', ' '),
    String(r.drills),
    String(r.differences),
    String(r.errored),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [header, ...cells].map((line) =>
    line
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}
