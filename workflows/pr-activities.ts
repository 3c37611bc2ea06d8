// The activity proxies of the PR workflow, one per kind of side effect, each with the timeouts and
// retry policy that suit it.
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { withCheckoutSplit } from './checkout-split.ts';

/** GitHub calls: quick, retried with backoff; 4xx other than rate limits are non-retryable. */
export const github = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
/**
 * git and terraform plan: safe to retry; heartbeats notice a dead worker quickly. A cancelled plan is
 * waited for until terraform has really exited: otherwise the next plan races it for the state lock.
 */
export const workspace = withCheckoutSplit(
  proxyActivities<Activities>({
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: '30 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 3, initialInterval: '2 seconds', nonRetryableErrorTypes: ['PlanMissing', 'PlanMismatch'] },
  }),
);
/** terraform apply: never retried — an apply whose outcome is unknown must be looked at, not repeated. */
export const applier = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 1 },
});
/** Calls to Temporal itself (signals to other workflows, namespace facts): quick, retried until they land. */
export const temporalCalls = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
