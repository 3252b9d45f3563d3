import type { Logger } from 'pino';
import type { LoggerHandlers } from '../proto/services.js';
import type { Logger as ApiLogger } from '../proto/gen/spire/api/types/Logger.js';
import type { LogLevel } from '../proto/gen/spire/api/types/LogLevel.js';
import { RpcError } from '../transport/rpc-error.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { ApiAuthorization } from './api-authorization.js';

type LevelName = Exclude<LogLevel, 'UNSPECIFIED' | number>;

/** SPIRE's (logrus's) levels onto pino's: pino has no panic, its fatal is the nearest. */
const PINO_LEVEL: Record<LevelName, string> = {
  PANIC: 'fatal',
  FATAL: 'fatal',
  ERROR: 'error',
  WARN: 'warn',
  INFO: 'info',
  DEBUG: 'debug',
  TRACE: 'trace',
};

function levelName(pinoLevel: string): LevelName {
  const found = (Object.keys(PINO_LEVEL) as LevelName[]).find(
    (name) => name !== 'PANIC' && PINO_LEVEL[name] === pinoLevel,
  );
  return found ?? 'INFO';
}

/**
 * logger.v1 on the admin socket: the server's log level read and changed while it runs, and reset to
 * the level it started with. The level asked for is what GetLogger reports, PANIC included.
 */
export function loggerService(deps: {
  auth: ApiAuthorization;
  observe: RpcObserver;
  logger: Logger;
}): Partial<LoggerHandlers> {
  const { auth, observe, logger } = deps;
  const launch = levelName(logger.level);
  let current: LevelName = launch;
  const state = (): ApiLogger => ({ currentLevel: current, launchLevel: launch });
  const apply = (level: LevelName) => {
    current = level;
    logger.level = PINO_LEVEL[level];
  };
  return {
    GetLogger: unary('logger.v1.Logger', 'GetLogger', observe, async (_request, call): Promise<ApiLogger> => {
      auth.local(call, 'GetLogger');
      return state();
    }),

    SetLogLevel: unary(
      'logger.v1.Logger',
      'SetLogLevel',
      observe,
      async (request, call): Promise<ApiLogger> => {
        auth.local(call, 'SetLogLevel');
        const level = request.newLevel;
        if (level === 'UNSPECIFIED')
          throw RpcError.invalidArgument('newLevel value cannot be LogLevel_UNSPECIFIED');
        if (typeof level === 'number' || !(level in PINO_LEVEL))
          throw RpcError.invalidArgument('unsupported log level');
        logger.info({ new_log_level: level.toLowerCase() }, 'SetLogLevel Called');
        apply(level);
        return state();
      },
    ),

    ResetLogLevel: unary(
      'logger.v1.Logger',
      'ResetLogLevel',
      observe,
      async (_request, call): Promise<ApiLogger> => {
        auth.local(call, 'ResetLogLevel');
        logger.info({ launch_log_level: launch.toLowerCase() }, 'ResetLogLevel Called');
        apply(launch);
        return state();
      },
    ),
  };
}
