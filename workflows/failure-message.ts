/**
 * What went wrong, in the words of whatever failed first. Temporal wraps an activity's or a child
 * workflow's error ("Activity task failed"), so the message a runbook or report needs is the
 * innermost cause's.
 */
export function failureMessage(error: unknown): string {
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
