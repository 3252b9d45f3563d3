/** Renderings that match what SPIRE's Go CLIs print. */

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Go's time.Time String() in UTC: "2006-01-02 15:04:05 +0000 UTC". */
export function formatGoTime(date: Date): string {
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000 UTC`
  );
}

/** Unix seconds, as the SPIRE API carries times, printed like Go's time.Unix(s, 0).UTC(). */
export function formatUnixTime(seconds: number): string {
  return formatGoTime(new Date(seconds * 1000));
}

/** "1 entry", "2 entries" */
export function pluralize(count: number, singular: string, plural: string): string {
  return `${count} ${count === 1 ? singular : plural}`;
}
