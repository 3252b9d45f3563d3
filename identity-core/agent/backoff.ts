/**
 * The agent's sync spacing, as SPIRE's (an exponential backoff started at the sync interval): each
 * `next()` answers the current delay with ±10 % jitter and then grows it ×1.5, up to
 * min(8 min, 48 × interval); `reset()` starts over. The agent takes one delay after every sync, a
 * success resetting first, so a regular sync comes one jittered interval later and the first retry
 * after a failure 1.5 intervals later.
 */
export class Backoff {
  private current: number;
  private readonly max: number;

  constructor(
    private readonly intervalMs: number,
    private readonly random: () => number = Math.random,
  ) {
    this.current = intervalMs;
    this.max = Math.min(8 * 60_000, 48 * intervalMs);
  }

  next(): number {
    const delay = this.current;
    // Growth stops at the cap; the jitter still applies around it.
    this.current = Math.min(this.current * 1.5, this.max);
    return Math.round(delay * (1 + (this.random() * 2 - 1) * 0.1));
  }

  reset(): void {
    this.current = this.intervalMs;
  }
}
