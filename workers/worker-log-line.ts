/**
 * One line for a message of the SDK's logger, with what an operator needs from its metadata: which
 * activity or workflow it is about and, for a failure, its cause (the bare message says neither).
 */
export function workerLogLine(message: string, meta: Record<string, unknown> = {}): string {
  const about: string[] = [];
  // The SDK's own messages carry camelCase fields; Core's (task duration warnings) snake_case ones.
  const workflowType = meta.workflowType ?? meta.workflow_type;
  const workflowId = meta.workflowId ?? meta.workflow_id;
  if (typeof meta.activityType === 'string') about.push(`activity ${meta.activityType}`);
  if (typeof workflowType === 'string')
    about.push(`workflow ${workflowType}${typeof workflowId === 'string' ? ` ${workflowId}` : ''}`);
  if (typeof meta.attempt === 'number' && meta.attempt > 1) about.push(`attempt ${meta.attempt}`);
  const error = meta.error ?? meta.failure;
  const cause = error instanceof Error ? causeChain(error) : typeof error === 'string' ? error : undefined;
  return `temporal worker: ${message}${about.length > 0 ? ` (${about.join(', ')})` : ''}${cause ? `: ${cause}` : ''}`;
}

/** An error's message and its causes', outermost first, on one line. */
function causeChain(error: Error): string {
  const messages: string[] = [];
  for (let e: unknown = error; e instanceof Error && messages.length < 5; e = e.cause)
    if (e.message && !messages.includes(e.message)) messages.push(e.message.split('\n')[0]!);
  return messages.join(' ← ');
}
