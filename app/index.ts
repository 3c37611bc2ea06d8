// The Probot app: webhook → PrEvent → signalWithStart. No git, terraform or GitHub API calls here.
import type { ApplicationFunction } from 'probot';
import { createDeliverer, repoAllowed } from './deliver.ts';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { DEPLOY_SIGNAL, DEPLOY_WORKFLOW_TYPE, DRIFT_RECONCILE_WORKFLOW_TYPE, PUSH_WORKFLOW_TYPE, RECONCILE_SIGNAL, deployWorkflowId, driftReconcileId, pushWorkflowId, type RepoRef } from '../shared/contracts.ts';
import { PUSH_EVENT, onPush, type StartPush } from './events/push.ts';
import { createLogger, type Logger } from './logger.ts';
import { CHECK_RUN_REQUESTED_ACTION_EVENT, onCheckRunRequestedAction, type DeliverDeploy } from './events/check-run-requested-action.ts';
import { ISSUE_COMMENT_CREATED_EVENT, onIssueCommentCreated, type DeliverReconcile } from './events/issue-comment-created.ts';
import { PULL_REQUEST_REVIEW_SUBMITTED_EVENT, onPullRequestReviewSubmitted } from './events/pull-request-review-submitted.ts';
import { PR_CLOSED_EVENT, PR_UPDATE_EVENTS, onPullRequest } from './events/pull-request.ts';

export interface AppDeps {
  client: Client;
  taskQueue: string;
  /** Globs of owner/repo; empty or absent → every repository the app is installed on. */
  repoAllowlist?: string[];
  logger?: Logger;
}

export function createApp(deps: AppDeps): ApplicationFunction {
  const logger = (deps.logger ?? createLogger()).child({ component: 'webhooks' });
  const deliver = createDeliverer({ client: deps.client, taskQueue: deps.taskQueue, repoAllowlist: deps.repoAllowlist, logger });
  /** A project's own workflow (drift reconcile, deploy queue), started if needed, gets the event. */
  const signalProjectWorkflow = async (type: string, workflowId: string, signal: string, repo: RepoRef, project: string, event: unknown) => {
    if (!repoAllowed(deps.repoAllowlist ?? [], `${repo.owner}/${repo.name}`)) return;
    await deps.client.workflow.signalWithStart(type, { workflowId, taskQueue: deps.taskQueue, args: [{ repo, project }], signal, signalArgs: [event] });
  };
  const deliverReconcile: DeliverReconcile = (repo, project, event) =>
    signalProjectWorkflow(DRIFT_RECONCILE_WORKFLOW_TYPE, driftReconcileId(repo, project), RECONCILE_SIGNAL, repo, project, event);
  const deliverDeploy: DeliverDeploy = (repo, project, event) =>
    signalProjectWorkflow(DEPLOY_WORKFLOW_TYPE, deployWorkflowId(repo, project), DEPLOY_SIGNAL, repo, project, event);
  const startPush: StartPush = async (input) => {
    if (!repoAllowed(deps.repoAllowlist ?? [], `${input.repo.owner}/${input.repo.name}`)) return 'not-allowed';
    try {
      await deps.client.workflow.start(PUSH_WORKFLOW_TYPE, { workflowId: pushWorkflowId(input.repo, input.after), taskQueue: deps.taskQueue, args: [input] });
      return 'started';
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate';
      throw err;
    }
  };
  return (app) => {
    app.on([...PR_UPDATE_EVENTS, PR_CLOSED_EVENT], onPullRequest(deliver, logger));
    app.on(ISSUE_COMMENT_CREATED_EVENT, onIssueCommentCreated(deliver, logger, deliverReconcile));
    app.on(PULL_REQUEST_REVIEW_SUBMITTED_EVENT, onPullRequestReviewSubmitted(deliver, logger));
    app.on(CHECK_RUN_REQUESTED_ACTION_EVENT, onCheckRunRequestedAction(deliver, logger, deliverDeploy));
    app.on(PUSH_EVENT, onPush(startPush, logger));
  };
}
