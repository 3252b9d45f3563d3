/**
 * How the reports word time: instants as seconds since the drill started (what an SRE compares with
 * the outage length and the TTLs), durations in seconds, wall-clock times in UTC.
 */

/** Seconds from `origin` to `at` (both epoch milliseconds), to a tenth: "12.3 s". */
export function secondsSince(origin: number, at: number): string {
  return `${((at - origin) / 1000).toFixed(1)} s`;
}

/** A window as seconds since `origin`: "46.1–62.3 s". */
export function windowSince(origin: number, start: number, end: number): string {
  return `${((start - origin) / 1000).toFixed(1)}–${((end - origin) / 1000).toFixed(1)} s`;
}

/** A length in seconds, with minutes and hours beside it once they read better: "90 s", "5400 s (1 h 30 m)". */
export function durationLabel(seconds: number): string {
  const rounded = Number.isInteger(seconds) ? String(seconds) : seconds.toFixed(1);
  if (seconds < 120) return `${rounded} s`;
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = Math.round(seconds % 60);
  const parts = [hours ? `${hours} h` : '', minutes ? `${minutes} m` : '', rest ? `${rest} s` : ''];
  return `${rounded} s (${parts.filter(Boolean).join(' ')})`;
}

/** An instant in UTC to the second: "2026-11-26 05:46:53 UTC". */
export function utcTime(at: number): string {
  return `${new Date(at).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
