import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { workerLogLine } from '../../workers/worker-log-line.js';

describe('workerLogLine', () => {
  it('names the failed activity, its workflow and its cause', () => {
    const error = new Error('cannot stop load balancer lb', { cause: new Error('ESRCH: no such process') });
    expect(
      workerLogLine('Activity failed', {
        error,
        activityType: 'healFault',
        workflowType: 'drillWorkflow',
        workflowId: 'drill/lb-down-short-1a2b3c',
        attempt: 3,
      }),
    ).toBe(
      'temporal worker: Activity failed (activity healFault, workflow drillWorkflow drill/lb-down-short-1a2b3c, attempt 3): cannot stop load balancer lb ← ESRCH: no such process',
    );
  });

  it('gives an application failure its message on one line', () => {
    const line = workerLogLine('Activity failed', {
      error: ApplicationFailure.nonRetryable('deployment x has no plan\nsecond line', 'BadInput'),
      activityType: 'prepareDrill',
      attempt: 1,
    });
    expect(line).toBe('temporal worker: Activity failed (activity prepareDrill): deployment x has no plan');
  });

  it("names the workflow of Core's messages, whose fields are snake_case", () => {
    expect(
      workerLogLine('Workflow task duration exceeded 5 seconds', {
        workflow_type: 'drillWorkflow',
        workflow_id: 'drill/x',
      }),
    ).toBe('temporal worker: Workflow task duration exceeded 5 seconds (workflow drillWorkflow drill/x)');
  });

  it('leaves a message without metadata as it is', () => {
    expect(workerLogLine('Workflow task duration exceeded 5 seconds')).toBe(
      'temporal worker: Workflow task duration exceeded 5 seconds',
    );
  });
});
