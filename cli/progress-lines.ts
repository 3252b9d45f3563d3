import type { DrillStatusView } from '../workflows/drill-workflow.js';

/**
 * `--json` progress: one JSON object per line on stderr while a run goes on, so a CI log shows it
 * live and stdout keeps exactly one JSON document, the result.
 */
export function progressLine(fields: {
  at: number;
  phase: string;
  step: string;
  [key: string]: unknown;
}): void {
  process.stderr.write(`${JSON.stringify({ ...fields, at: new Date(fields.at).toISOString() })}\n`);
}

/** The progress lines of a drill's steps from index `from` on, each with the phase it was taken in. */
export function drillProgress(status: DrillStatusView, from: number): void {
  status.steps.slice(from).forEach((step, i) => {
    const taken = status.stepTimes?.[from + i];
    progressLine({
      at: taken?.at ?? Date.now(),
      runId: status.runId,
      phase: taken?.phase ?? status.phase,
      step,
    });
  });
}
