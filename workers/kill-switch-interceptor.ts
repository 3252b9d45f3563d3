import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * A TEST HOOK, inert unless `SPIRE_DRILL_TEST_KILL_AT` is set: the worker SIGKILLs itself at one
 * activity boundary, so a test can crash it exactly there (test/ci-kill/). The value is
 * `<workflowId>:<activityType>:<activityId>[:after]`: the activity with that id (the workflow's
 * sequence number, the same in every run of the same code) in that workflow, on its first attempt;
 * at its start by default, or with `:after` once its work is done but before its result is reported.
 */
export const KILL_AT_VARIABLE = 'SPIRE_DRILL_TEST_KILL_AT';

export interface KillPoint {
  workflowId: string;
  activityType: string;
  activityId: string;
  when: 'start' | 'after';
}

export function parseKillPoint(value: string): KillPoint {
  const match = /^([^:]+):([A-Za-z0-9_]+):([^:]+?)(?::(start|after))?$/.exec(value);
  if (!match)
    throw new Error(
      `${KILL_AT_VARIABLE}="${value}": expected <workflowId>:<activityType>:<activityId>[:start|:after]`,
    );
  return {
    workflowId: match[1]!,
    activityType: match[2]!,
    activityId: match[3]!,
    when: (match[4] as 'start' | 'after' | undefined) ?? 'start',
  };
}

function die(point: KillPoint): never {
  // Written synchronously: the test reads the worker's log to tell this kill from any other death.
  process.stderr.write(
    `kill switch: SIGKILL at ${point.workflowId} ${point.activityType} #${point.activityId} (${point.when})\n`,
  );
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: the process was killed');
}

/** The interceptor for `point`, or none when the variable is unset (every production worker). */
export function killSwitchInterceptors(env: NodeJS.ProcessEnv = process.env): ActivityInterceptorsFactory[] {
  const value = env[KILL_AT_VARIABLE];
  if (!value) return [];
  const point = parseKillPoint(value);
  const matches = (ctx: Context) =>
    ctx.info.workflowExecution?.workflowId === point.workflowId &&
    ctx.info.activityType === point.activityType &&
    ctx.info.activityId === point.activityId &&
    ctx.info.attempt === 1;
  return [
    (ctx) => ({
      inbound: {
        async execute(input, next) {
          if (!matches(ctx)) return next(input);
          if (point.when === 'start') die(point);
          await next(input);
          die(point);
        },
      },
    }),
  ];
}
