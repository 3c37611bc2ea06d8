// The Probot app: each webhook event wired to its handler (app/events/). Handlers reach Temporal only
// through the deliverer (app/deliver.ts); no git, terraform or GitHub API calls here.
import type { ApplicationFunction } from 'probot';
import type { Client } from '@temporalio/client';
import { createDeliverer } from './deliver.ts';
import { createLogger, type Logger } from './logger.ts';
import type { HandlerDeps } from './events/deps.ts';
import { CHECK_RUN_REQUESTED_ACTION_EVENT, onCheckRunRequestedAction } from './events/check-run-requested-action.ts';
import { ISSUE_COMMENT_CREATED_EVENT, onIssueCommentCreated } from './events/issue-comment-created.ts';
import { PULL_REQUEST_REVIEW_SUBMITTED_EVENT, onPullRequestReviewSubmitted } from './events/pull-request-review-submitted.ts';
import { PR_CLOSED_EVENT, PR_UPDATE_EVENTS, onPullRequest } from './events/pull-request.ts';
import { PUSH_EVENT, onPush } from './events/push.ts';

export interface AppDeps {
  client: Client;
  taskQueue: string;
  /** Globs of owner/repo; empty or absent → every repository the app is installed on. */
  repoAllowlist?: string[];
  logger?: Logger;
}

export function createApp(deps: AppDeps): ApplicationFunction {
  const logger = (deps.logger ?? createLogger()).child({ component: 'webhooks' });
  const handlers: HandlerDeps = { deliver: createDeliverer({ client: deps.client, taskQueue: deps.taskQueue, repoAllowlist: deps.repoAllowlist, logger }), logger };
  return (app) => {
    app.on([...PR_UPDATE_EVENTS, PR_CLOSED_EVENT], onPullRequest(handlers));
    app.on(ISSUE_COMMENT_CREATED_EVENT, onIssueCommentCreated(handlers));
    app.on(PULL_REQUEST_REVIEW_SUBMITTED_EVENT, onPullRequestReviewSubmitted(handlers));
    app.on(CHECK_RUN_REQUESTED_ACTION_EVENT, onCheckRunRequestedAction(handlers));
    app.on(PUSH_EVENT, onPush(handlers));
  };
}
