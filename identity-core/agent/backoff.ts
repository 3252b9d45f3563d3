/**
 * The agent's retry spacing after a failed sync, as SPIRE's: start at the sync interval, grow ×1.5 per
 * failure with ±10 % jitter, never beyond min(8 min, 48 × interval); a success starts over.
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

  /** Delay before the next attempt after a failure. */
  next(): number {
    const delay = Math.min(this.current, this.max);
    this.current = Math.min(this.current * 1.5, this.max);
    const jittered = delay * (1 + (this.random() * 2 - 1) * 0.1);
    return Math.round(Math.min(jittered, this.max));
  }

  reset(): void {
    this.current = this.intervalMs;
  }
}
