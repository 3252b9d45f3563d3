/** The one zod schema of a positive duration in topology, fault and scenario files. */
import { z } from 'zod';
import { parseDuration } from '../../identity-core/config/duration.js';

/** Seconds, or a Go duration string such as "20s" or "5m"; normalized to seconds. */
export const durationSeconds = z
  .union([z.string(), z.number()], { error: 'expected a duration such as "20s" or "1h"' })
  .transform((value, ctx) => {
    const seconds = typeof value === 'number' ? value : parseDuration(value);
    if (seconds === undefined || !Number.isFinite(seconds) || seconds <= 0) {
      ctx.issues.push({
        code: 'custom',
        message: `invalid duration ${JSON.stringify(value)} (a positive Go duration such as "20s", "5m", "1h")`,
        input: value,
      });
      return z.NEVER;
    }
    return seconds;
  });
