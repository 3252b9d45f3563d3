import { decodePendingActivityState, type Client } from '@temporalio/client';

/** The stdout of a finished CLI run, or its stderr as the error when it failed. */
export async function ok(result: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const r = await result;
  if (r.code !== 0) throw new Error(r.stderr || r.stdout);
  return r.stdout;
}

/**
 * Polls `check` every `intervalMs` until it returns something other than undefined (errors count as
 * "not yet"), and returns that; fails after `timeoutMs` naming `what` and the last error seen.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

/** Checks `check` every 100 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  await waitFor(what, async () => check() || undefined, timeoutMs, 100);
}

/** What `settling` settles to, or an error naming `what` if it has not within `timeoutMs`. */
export async function within<T>(what: string, settling: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([settling, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a JSON (pino) log holds a line whose message contains `message`, written after `after` (ms). */
export function loggedAfter(log: string, message: string, after: number): boolean {
  return log
    .split('\n')
    .filter((line) => line.includes(message))
    .some((line) => (JSON.parse(line) as { time: number }).time > after);
}

/**
 * Resolves once the clock has passed `instant` (ms), for a state that is nothing but time: a token or
 * certificate that has expired when nothing observable happens at its expiry.
 */
export async function untilPast(what: string, instant: number): Promise<void> {
  await waitUntil(what, () => Date.now() > instant, Math.max(0, instant - Date.now()) + 5_000);
}

/**
 * Waits until workflow `workflowId` has an activity of type `activityType` running on a worker (its
 * pending activity has started), e.g. to kill that worker in the middle of that very activity.
 */
export async function activityRunning(
  client: Client,
  workflowId: string,
  activityType: string,
  timeoutMs: number,
): Promise<void> {
  await waitFor(
    `${workflowId} to run the activity ${activityType}`,
    async () => {
      const { raw } = await client.workflow.getHandle(workflowId).describe();
      return (
        (raw.pendingActivities ?? []).some(
          (a) => a.activityType?.name === activityType && decodePendingActivityState(a.state) === 'STARTED',
        ) || undefined
      );
    },
    timeoutMs,
    100,
  );
}

/** Waits until workflow `workflowId` has a workflow task that no worker has completed: it needs a worker. */
export async function waitingForWorker(client: Client, workflowId: string, timeoutMs: number): Promise<void> {
  await waitFor(
    `${workflowId} to wait for a worker`,
    async () =>
      (await client.workflow.getHandle(workflowId).describe()).raw.pendingWorkflowTask ? true : undefined,
    timeoutMs,
    100,
  );
}
