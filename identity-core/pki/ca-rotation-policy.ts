/**
 * SPIRE's automatic rotation thresholds for a CA (or JWT key) with lifetime L = NotAfter − NotBefore:
 * prepare the next one once less than min(L/2, 30 days) remains, activate it once less than
 * min(L/6, 7 days) remains. Checked every 10 s by default.
 */
const DAY = 24 * 3600;

export const DEFAULT_ROTATION_CHECK_INTERVAL_SECONDS = 10;

export function preparationThreshold(notBefore: number, notAfter: number): number {
  return notAfter - Math.min((notAfter - notBefore) / 2, 30 * DAY);
}

export function activationThreshold(notBefore: number, notAfter: number): number {
  return notAfter - Math.min((notAfter - notBefore) / 6, 7 * DAY);
}

export function shouldPrepare(current: { notBefore: number; notAfter: number }, nowSeconds: number): boolean {
  return nowSeconds > preparationThreshold(current.notBefore, current.notAfter);
}

export function shouldActivate(
  current: { notBefore: number; notAfter: number },
  nowSeconds: number,
): boolean {
  return nowSeconds > activationThreshold(current.notBefore, current.notAfter);
}
