/**
 * Go's duration syntax, as SPIRE configs use it ("1h30m", "300ms", "1.5h"), and
 * Go's way of printing one, as SPIRE's CLI output shows it.
 */

const NANOS_PER_UNIT: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const COMPONENT = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;

/** Seconds in a Go duration string, or undefined if it is not one. */
export function parseDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let nanos = 0;
  while (rest !== '') {
    const match = COMPONENT.exec(rest);
    if (!match) return undefined;
    const [whole, intPart = '', fracPart = '', unit = ''] = match;
    const perUnit = NANOS_PER_UNIT[unit];
    if (perUnit === undefined || (intPart === '' && fracPart === '')) return undefined;
    nanos += Number(intPart || '0') * perUnit + (fracPart ? Number(`0.${fracPart}`) * perUnit : 0);
    rest = rest.slice(whole.length);
  }
  return (sign * Math.round(nanos)) / 1e9;
}

/** Digits of `value / unit` with the fraction's trailing zeros removed, as Go prints them. */
function decimal(value: bigint, unit: bigint, digits: number): string {
  const whole = value / unit;
  const fraction = (value % unit).toString().padStart(digits, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}

/** Go's time.Duration String(): "1h0m0s", "1m30s", "2.5s", "3.2ms", "0s". */
export function formatGoDuration(nanoseconds: bigint | number): string {
  let ns = BigInt(typeof nanoseconds === 'number' ? Math.round(nanoseconds) : nanoseconds);
  const negative = ns < 0n;
  if (negative) ns = -ns;
  let text: string;
  if (ns === 0n) text = '0s';
  else if (ns < 1000n) text = `${ns}ns`;
  else if (ns < 1_000_000n) text = `${decimal(ns, 1000n, 3)}µs`;
  else if (ns < 1_000_000_000n) text = `${decimal(ns, 1_000_000n, 6)}ms`;
  else {
    const hours = ns / 3_600_000_000_000n;
    const minutes = (ns % 3_600_000_000_000n) / 60_000_000_000n;
    const seconds = decimal(ns % 60_000_000_000n, 1_000_000_000n, 9);
    if (hours > 0n) text = `${hours}h${minutes}m${seconds}s`;
    else if (minutes > 0n) text = `${minutes}m${seconds}s`;
    else text = `${seconds}s`;
  }
  return negative ? `-${text}` : text;
}

/** A whole-second duration without Go's trailing zero units: "4h", "1h30m", "90s" → "1m30s". */
export function formatShortDuration(seconds: number): string {
  let text = formatGoDuration(BigInt(Math.trunc(seconds)) * 1_000_000_000n);
  if (text.endsWith('m0s')) text = text.slice(0, -2);
  if (text.endsWith('h0m')) text = text.slice(0, -2);
  return text;
}
