import { describe, expect, it } from 'vitest';
import {
  KILL_AT_VARIABLE,
  killSwitchInterceptors,
  parseKillPoint,
} from '../../workers/kill-switch-interceptor.js';

describe('the kill switch (a test hook)', () => {
  it('is absent from a worker whose environment does not name a point', () => {
    expect(killSwitchInterceptors({})).toEqual([]);
    expect(killSwitchInterceptors({ [KILL_AT_VARIABLE]: '' })).toEqual([]);
  });

  it('reads a workflow id, an activity type and id, and when to die', () => {
    expect(parseKillPoint('rotate/kd-1/3:localAuthority:2')).toEqual({
      workflowId: 'rotate/kd-1/3',
      activityType: 'localAuthority',
      activityId: '2',
      when: 'start',
    });
    expect(parseKillPoint('drill/run-1:injectFault:4:after').when).toBe('after');
  });

  it('refuses a malformed point, saying what it expects', () => {
    for (const bad of ['localAuthority', 'a:b', 'a:b:c:later', 'a:b c:1'])
      expect(() => killSwitchInterceptors({ [KILL_AT_VARIABLE]: bad })).toThrow(
        /expected <workflowId>:<activityType>:<activityId>\[:start\|:after\]/,
      );
  });
});
