/**
 * Debian's headless Chromium for the report tests: it loads a page from disk with networking off and
 * dumps the DOM it parsed or a screenshot of what it painted. Chromium is a required part of the suite
 * (tools/install.sh installs it); without it the tests that use it fail, saying how to install it.
 */
import { spawnSync } from 'node:child_process';
import type { Image } from './png.js';

const HEADLESS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--no-first-run',
];

export function chromium(args: string[]): string {
  const result = spawnSync('chromium', [...HEADLESS, ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new Error(
      'chromium is not installed, and the HTML report test needs it: run tools/install.sh chromium as root ' +
        '(it runs apt-get install chromium), or apt-get install chromium yourself',
    );
  if (result.error || result.status !== 0)
    throw new Error(
      `chromium ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}): ${result.stderr}`,
    );
  return result.stdout;
}

export function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

/** Pixels within `tolerance` of `rgb` on every channel. */
export function pixelsNear(image: Image, [r, g, b]: number[], tolerance = 8): number {
  let found = 0;
  for (let i = 0; i < image.pixels.length; i += 4) {
    const p = image.pixels;
    if (
      Math.abs((p[i] ?? 0) - (r ?? 0)) <= tolerance &&
      Math.abs((p[i + 1] ?? 0) - (g ?? 0)) <= tolerance &&
      Math.abs((p[i + 2] ?? 0) - (b ?? 0)) <= tolerance
    )
      found++;
  }
  return found;
}

/** The 8-bit RGB of a CSS `hsl(h, s%, l%)` colour, as the renderer writes authority colours. */
export function hslToRgb(css: string): number[] {
  const [h, s, l] = (/hsl\((\d+), (\d+)%, (\d+)%\)/.exec(css) ?? []).slice(1).map(Number) as number[];
  if (h === undefined || s === undefined || l === undefined) throw new Error(`not an hsl() colour: ${css}`);
  const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}
