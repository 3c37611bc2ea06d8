// The Probot app: webhook → PrEvent → signalWithStart. No git, terraform or GitHub API calls here.
import type { ApplicationFunction } from 'probot';
import type { Client } from '@temporalio/client';
import { createDeliverer, repoAllowed } from './deliver.ts';
import { DRIFT_RECONCILE_WORKFLOW_TYPE, RECONCILE_SIGNAL, driftReconcileId } from '../workflows/types.ts';
import { createLogger, type Logger } from './logger.ts';
import { CHECK_RUN_REQUESTED_ACTION_EVENT, onCheckRunRequestedAction } from './events/check-run-requested-action.ts';
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
  const deliverReconcile: DeliverReconcile = async (repo, project, event) => {
    if (!repoAllowed(deps.repoAllowlist ?? [], `${repo.owner}/${repo.name}`)) return;
    await deps.client.workflow.signalWithStart(DRIFT_RECONCILE_WORKFLOW_TYPE, {
      workflowId: driftReconcileId(repo, project),
      taskQueue: deps.taskQueue,
      args: [{ repo, project }],
      signal: RECONCILE_SIGNAL,
      signalArgs: [event],
    });
  };
  return (app) => {
    app.on([...PR_UPDATE_EVENTS, PR_CLOSED_EVENT], onPullRequest(deliver, logger));
    app.on(ISSUE_COMMENT_CREATED_EVENT, onIssueCommentCreated(deliver, logger, deliverReconcile));
    app.on(PULL_REQUEST_REVIEW_SUBMITTED_EVENT, onPullRequestReviewSubmitted(deliver, logger));
    app.on(CHECK_RUN_REQUESTED_ACTION_EVENT, onCheckRunRequestedAction(deliver, logger));
  };
}
