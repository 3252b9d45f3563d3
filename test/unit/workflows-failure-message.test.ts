import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { failureMessage } from '../../workflows/failure-message.js';

describe('failureMessage', () => {
  it("gives an activity's own words, not Temporal's wrapper", () => {
    const cause = ApplicationFailure.create({ message: 'east has not rotated away from abc after 60 s' });
    const wrapped = new ActivityFailure(
      'Activity task failed',
      'healFault',
      '7',
      RetryState.MAXIMUM_ATTEMPTS_REACHED,
      'worker',
      cause,
    );
    expect(wrapped.message).toBe('Activity task failed');
    expect(failureMessage(wrapped)).toBe('east has not rotated away from abc after 60 s');
  });

  it('gives a plain error its message, and anything else as text', () => {
    expect(failureMessage(new Error('no steady state'))).toBe('no steady state');
    expect(failureMessage('refused')).toBe('refused');
  });
});
