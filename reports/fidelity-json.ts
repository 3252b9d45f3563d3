/**
 * fidelity.json: the comparison as data, for machines: the fidelity run's record, the threshold, and
 * per drill both sides' figures, the workloads' figures and the flagged differences with their
 * evidence, in the order fidelity-comparison.ts declares them, so the same runs give the same bytes.
 */
import type { FidelityComparison } from './fidelity-comparison.js';

export function renderFidelityJson(comparison: FidelityComparison): string {
  return `${JSON.stringify(comparison, null, 2)}\n`;
}
