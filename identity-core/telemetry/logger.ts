import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stderr, so stdout stays free for CLI output; `subsystem_name` as SPIRE's logs name it.
 * `level` is a pino level name (the config loader maps SPIRE's DEBUG/INFO/WARN/ERROR onto them).
 */
export function createLogger(level: string, subsystem: string): Logger {
  const name = level.toLowerCase() === 'warning' ? 'warn' : level.toLowerCase();
  return pino(
    {
      level: pino.levels.values[name] !== undefined ? name : 'info',
      base: { pid: process.pid, subsystem_name: subsystem },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
