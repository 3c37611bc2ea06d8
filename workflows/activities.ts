// The activities workflows call, one proxy per kind of side effect, each with the timeouts and retry
// policy that suit it, destructured so a workflow imports exactly the calls it makes.
import { ActivityCancellationType, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';

type Group<K extends keyof Activities> = Pick<Activities, K>;

/** GitHub's API: quick, retried with backoff; 4xx other than rate limits are non-retryable. */
export const {
  getPullRequest,
  mergedPrOf,
  openPullRequests,
  pullRequestCommitLogins,
  getPermission,
  requirementFacts,
  reactToComment,
  postComment,
  postPlanReport,
  postApplyReport,
  minimizeComments,
  upsertCheckRun,
  reportDrift,
  closeDrift,
  openGateIssue,
  closeGateIssue,
} = proxyActivities<
  Group<
    | 'getPullRequest'
    | 'mergedPrOf'
    | 'openPullRequests'
    | 'pullRequestCommitLogins'
    | 'getPermission'
    | 'requirementFacts'
    | 'reactToComment'
    | 'postComment'
    | 'postPlanReport'
    | 'postApplyReport'
    | 'minimizeComments'
    | 'upsertCheckRun'
    | 'reportDrift'
    | 'closeDrift'
    | 'openGateIssue'
    | 'closeGateIssue'
  >
>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** git and the repository's files: safe to retry; heartbeats notice a dead worker quickly. */
export const { selectProjects, branchHead, policyAt, permissionsAt, revisionFacts, removeWorkDirs, keepApprovedPlan } = proxyActivities<
  Group<'selectProjects' | 'branchHead' | 'policyAt' | 'permissionsAt' | 'revisionFacts' | 'removeWorkDirs' | 'keepApprovedPlan'>
>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

/**
 * terraform plan and what reads plans: safe to retry. A cancelled plan is waited for until terraform has
 * really exited: otherwise the next plan races it for the state lock.
 */
export const { plan, readOutputs, detectDrift, comparePlans } = proxyActivities<Group<'plan' | 'readOutputs' | 'detectDrift' | 'comparePlans'>>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 3, initialInterval: '2 seconds', nonRetryableErrorTypes: ['PlanMissing', 'PlanMismatch'] },
});

/** Policy checks against a plan's JSON: they only read it, so safe to retry. */
export const { runPolicyChecks } = proxyActivities<Group<'runPolicyChecks'>>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

/** terraform apply: never retried — an apply whose outcome is unknown must be looked at, not repeated. */
export const { apply } = proxyActivities<Group<'apply'>>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 1 },
});

/**
 * After a worker died inside an apply: waits for the orphaned terraform, then plans again (a plan, so safe
 * to retry); its heartbeats carry it through a long wait.
 */
export const { resolveInterruptedApply } = proxyActivities<Group<'resolveInterruptedApply'>>({
  startToCloseTimeout: '3 hours',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

/** Calls to Temporal itself (signals and starts of other workflows, namespace facts): retried until they land. */
export const { enqueueDeploy, startDriftRuns, offerReconcile, searchAttributesRegistered, syncDriftSchedulesAtHead, workflowRunning } = proxyActivities<
  Group<'enqueueDeploy' | 'startDriftRuns' | 'offerReconcile' | 'searchAttributesRegistered' | 'syncDriftSchedulesAtHead' | 'workflowRunning'>
>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * Quick steps on the path to a plan, run by the worker that runs the workflow, without a round trip through
 * the server: each saves a workflow task. A run's checkout (its work dir almost always exists already: the
 * starter's project selection made it), retried like the other git calls...
 */
export const { checkout } = proxyLocalActivities<Group<'checkout'>>({
  startToCloseTimeout: '1 hour',
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});
/** ...and a lock request (one signal), retried until it lands, as the other Temporal calls. */
export const { requestLock } = proxyLocalActivities<Group<'requestLock'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
/** The end of a run's log for its memo: a local read of a file this worker just wrote. */
export const { readLogTail } = proxyLocalActivities<Group<'readLogTail'>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});
