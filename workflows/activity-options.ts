import { proxyActivities, ActivityCancellationType } from '@temporalio/workflow';
import type { DeploymentActivities } from '../activities/deployment-activities.js';
import type { DrillActivities } from '../activities/drill-activities.js';

/** Quick admin calls and process starts: retried a few times, bad input never. */
export const quick = proxyActivities<DeploymentActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '20 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['BadInput'],
  },
});

/** Waits on the deployment (bundles, workloads): long, heartbeating, so a dead worker is noticed fast. */
export const waits = proxyActivities<DeploymentActivities>({
  startToCloseTimeout: '6 minutes',
  heartbeatTimeout: '20 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: ['BadInput'],
  },
});

/** A drill's quick steps (inject, heal, renew a lease, conclude): retried, bad input never. */
export const drillQuick = proxyActivities<DrillActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['BadInput', 'FaultRefused'],
  },
});

/** A drill's waits on the probes (steady state, recovery): heartbeating, so a dead worker is noticed fast. */
export const drillWaits = proxyActivities<DrillActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: ['BadInput', 'FaultRefused'],
  },
});

/**
 * The hold's lease renewal and stop check: quick file reads, timed out within seconds so that when a
 * worker dies in one, the retry on the next worker still renews well within the fault's 20 s lease
 * (under drillQuick's 30 s heartbeat timeout the watchdog healed it first, and the drill errored).
 */
export const drillHold = proxyActivities<DrillActivities>({
  startToCloseTimeout: '8 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '4 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['BadInput', 'FaultRefused'],
  },
});

/**
 * The injection and its confirmation: the fault's 20 s lease runs from the injection with nothing else
 * renewing it until the hold, so a worker dying in either must be noticed (10 s without a heartbeat)
 * and the step retried before the watchdog heals the fault; both heartbeat while they work.
 */
export const drillLeased = proxyActivities<DrillActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '4 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['BadInput', 'FaultRefused'],
  },
});
