/**
 * When the agent renews an SVID: once half its lifetime is left, jittered by ±10 % of that half, so a
 * renewal lands while 45–55 % of the lifetime remains and a fleet issued together does not renew together.
 * The jitter is drawn once per SVID, so repeated checks agree.
 */
export function renewalTime(notBefore: number, notAfter: number, random: () => number = Math.random): number {
  const half = (notAfter - notBefore) / 2;
  const jitter = (random() * 2 - 1) * 0.1 * half;
  return notAfter - (half + jitter);
}
