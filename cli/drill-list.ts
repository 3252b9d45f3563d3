import { parseDuration } from '../identity-core/config/duration.js';
import type { DrillSummary } from '../results/results-store.js';
import { CliFailure } from './cli-support.js';
import { startedAt, textTable } from './text-table.js';

const DAY_S = 86_400;

/**
 * `--since`: a duration back from now (Go syntax, plus days: `7d`, `36h`, `90m`) or an ISO date
 * (`2026-11-01`, `2026-11-01T06:00:00Z`); epoch ms.
 */
export function parseSince(text: string, now = Date.now()): number {
  const days = /^(\d+(?:\.\d+)?)d$/.exec(text);
  const seconds = days ? Number(days[1]) * DAY_S : parseDuration(text);
  if (seconds !== undefined && seconds >= 0) return now - seconds * 1000;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text);
    if (!Number.isNaN(at)) return at;
  }
  throw new CliFailure(
    `--since: expected a duration back from now (7d, 36h, 90m) or an ISO date (2026-11-01) (got ${text})`,
    2,
  );
}

const duration = (ms: number) => {
  const total = Math.round(ms / 1000);
  return total < 60 ? `${total} s` : `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
};

/** `drill list` as a table: a header, then one row per run, columns as wide as their widest cell. */
export function drillListTable(rows: DrillSummary[]): string[] {
  const header = ['RUN ID', 'SCENARIO', 'OUTAGE', 'VERDICT', 'STARTED (UTC)', 'DURATION', 'DEPLOYMENT'];
  const cells = rows.map((r) => [
    r.runId,
    r.scenario,
    r.outage,
    r.verdict,
    startedAt(r.startedAt),
    r.finishedAt !== undefined ? duration(r.finishedAt - r.startedAt) : '—',
    r.deploymentId ?? '—',
  ]);
  return textTable(header, cells);
}
