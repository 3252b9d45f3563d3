import type { Client } from '@temporalio/client';

/** One activity a workflow scheduled, as its history recorded it: a point between two steps. */
export interface ActivityBoundary {
  workflowId: string;
  workflowType: string;
  activityType: string;
  /** The workflow's sequence number for it: the same in every run of the same code. */
  activityId: string;
  /** 1 for the first activity of this type in this workflow, 2 for the second… */
  occurrence: number;
}

/**
 * Every activity that workflow `workflowId` scheduled, read from its history, with those of the child
 * workflows it started (recursively), each child's where its start was recorded.
 */
export async function activityBoundaries(client: Client, workflowId: string): Promise<ActivityBoundary[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const workflowType =
    events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? 'unknown workflow type';
  const seen = new Map<string, number>();
  const found: ActivityBoundary[] = [];
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const activityType = scheduled.activityType?.name ?? 'unknown activity type';
      const occurrence = (seen.get(activityType) ?? 0) + 1;
      seen.set(activityType, occurrence);
      found.push({ workflowId, workflowType, activityType, activityId: scheduled.activityId!, occurrence });
    }
    const child = event.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
    if (child) found.push(...(await activityBoundaries(client, child)));
  }
  return found;
}
