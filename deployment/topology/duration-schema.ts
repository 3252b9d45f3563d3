/** The zod schemas of durations in topology, fault and scenario files. */
import { z } from 'zod';
import { parseDuration } from '../../identity-core/config/duration.js';

function durationFrom(zeroAllowed: boolean) {
  const kind = zeroAllowed ? 'a Go duration' : 'a positive Go duration';
  return z
    .union([z.string(), z.number()], { error: 'expected a duration such as "20s" or "1h"' })
    .transform((value, ctx) => {
      const seconds = typeof value === 'number' ? value : parseDuration(value);
      if (
        seconds === undefined ||
        !Number.isFinite(seconds) ||
        seconds < 0 ||
        (seconds === 0 && !zeroAllowed)
      ) {
        ctx.issues.push({
          code: 'custom',
          message: `invalid duration ${JSON.stringify(value)} (${kind} such as "20s", "5m", "1h")`,
          input: value,
        });
        return z.NEVER;
      }
      return seconds;
    });
}

/** Seconds, or a Go duration string such as "20s" or "5m"; normalized to seconds. */
export const durationSeconds = durationFrom(false);

/** As `durationSeconds`, where 0 means off (SPIRE's max_attested_node_info_staleness). */
export const durationOrZeroSeconds = durationFrom(true);
