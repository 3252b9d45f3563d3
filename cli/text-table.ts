/** Rows of cells as lines of text, each column as wide as its widest cell, two spaces apart. */
export function textTable(header: string[], cells: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [header, ...cells].map((line) =>
    line
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

/** When a run started, as the list tables show it: UTC to the second. */
export const startedAt = (epochMs: number) => new Date(epochMs).toISOString().slice(0, 19).replace('T', ' ');
