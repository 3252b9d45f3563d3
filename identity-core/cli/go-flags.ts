/**
 * Go's flag package conventions, which SPIRE's CLIs follow: long flags with one
 * dash (`-spiffeID x`), `-flag=value`, and booleans spelled true/false/1/0/t/f.
 * commander wants two dashes, so argv is rewritten on the way in and help or error
 * text on the way out.
 */

const SINGLE_DASH_LONG_FLAG = /^-([A-Za-z][A-Za-z0-9_.-]+)(=.*)?$/s;

/**
 * `-name` and `-name=value` → `--name…` for names of two letters or more; stops at `--`. As in Go,
 * the argument after a flag that takes a value is that value even when it starts with a dash
 * (`-authorityID -x1`), so it is left alone; `takesValue` says which flags do.
 */
export function normalizeArgv(
  argv: readonly string[],
  takesValue: (name: string) => boolean = () => false,
): string[] {
  const out: string[] = [];
  let flagsEnded = false;
  let valueNext = false;
  for (const arg of argv) {
    if (valueNext) {
      out.push(arg);
      valueNext = false;
      continue;
    }
    if (arg === '--') flagsEnded = true;
    const flag = flagsEnded ? null : /^--?([A-Za-z][A-Za-z0-9_.-]+)$/.exec(arg);
    if (flag && takesValue(flag[1]!)) valueNext = true;
    out.push(!flagsEnded && SINGLE_DASH_LONG_FLAG.test(arg) ? `-${arg}` : arg);
  }
  return out;
}

/** Shows flags the way users type them: `--spiffeID` → `-spiffeID`. */
export function singleDashFlags(text: string): string {
  return text.replace(/(^|[\s'"`[(,|])--([A-Za-z][A-Za-z0-9_.-]+)/g, '$1-$2');
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool; undefined when the text is not a boolean. */
export function parseGoBool(text: string): boolean | undefined {
  if (GO_TRUE.has(text)) return true;
  if (GO_FALSE.has(text)) return false;
  return undefined;
}

/** Go's flag.IntVar accepts an optional sign and decimal digits; undefined otherwise. */
export function parseGoInt(text: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}
