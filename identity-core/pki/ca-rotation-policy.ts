/**
 * SPIRE's automatic rotation thresholds for a CA (or JWT key) with lifetime L = NotAfter − issued at
 * (when its preparation began; not NotBefore, which is backdated 10 s): prepare the next one once less
 * than min(L/2, 30 days) remains, activate it once less than min(L/6, 7 days) remains. Checked every
 * 10 s by default.
 */
const DAY = 24 * 3600;

export const DEFAULT_ROTATION_CHECK_INTERVAL_SECONDS = 10;

export function preparationThreshold(issuedAt: number, notAfter: number): number {
  return notAfter - Math.min((notAfter - issuedAt) / 2, 30 * DAY);
}

export function activationThreshold(issuedAt: number, notAfter: number): number {
  return notAfter - Math.min((notAfter - issuedAt) / 6, 7 * DAY);
}

/** An authority's lifetime as the journal knows it; entries from before `issuedAt` fall back to NotBefore. */
type Lifetime = { issuedAt?: number; notBefore: number; notAfter: number };

export function shouldPrepare(current: Lifetime, nowSeconds: number): boolean {
  return nowSeconds > preparationThreshold(current.issuedAt ?? current.notBefore, current.notAfter);
}

export function shouldActivate(current: Lifetime, nowSeconds: number): boolean {
  return nowSeconds > activationThreshold(current.issuedAt ?? current.notBefore, current.notAfter);
}
