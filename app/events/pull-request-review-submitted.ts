// An approving pull request review counts as /approve, pinned to the commit that was reviewed.
import type { Context } from 'probot';
import type { HandlerDeps } from './deps.ts';
import { snapshotFrom } from './pull-request.ts';
import { repoRefFrom } from './repo-ref.ts';
import { createdAt } from './issue-comment-created.ts';

export const PULL_REQUEST_REVIEW_SUBMITTED_EVENT = 'pull_request_review.submitted';

export function onPullRequestReviewSubmitted({ deliver, logger }: HandlerDeps) {
  return async (context: Context<typeof PULL_REQUEST_REVIEW_SUBMITTED_EVENT>): Promise<void> => {
    const { payload } = context;
    if (payload.review.state.toLowerCase() !== 'approved') return;
    const repo = repoRefFrom(payload);
    if (!repo) {
      logger.info({ deliveryId: context.id, event: PULL_REQUEST_REVIEW_SUBMITTED_EVENT }, 'no installation on event; ignored');
      return;
    }
    await deliver.pr({
      pr: { repo, number: payload.pull_request.number },
      snapshot: snapshotFrom(payload.pull_request, repo.cloneUrl),
      event: {
        type: 'command',
        deliveryId: context.id,
        source: 'review',
        actor: payload.sender.login,
        command: { name: 'approve', extraArgs: [] },
        reviewCommitSha: payload.review.commit_id,
        reviewId: payload.review.id,
        ...createdAt(payload.review.submitted_at),
      },
    });
  };
}
