import { describe, expect, it } from 'vitest';
import { PR_EVENT_SIGNAL, prWorkflowId } from '../../../shared/contracts.ts';
import { fixtures, withPrNumber } from '../fixtures/webhooks.ts';
import {
  freshPrNumber,
  receive,
  workflowExists,
  workflowRecord,
  webhookTestBed,
} from '../support.ts';

const bed = webhookTestBed();

describe('pull_request_review.submitted', () => {
  it('approved → /approve from the review, pinned to the reviewed commit', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request_review.submitted (approved)'](), number);
    const deliveryId = await receive(bed.probot, 'pull_request_review', payload);
    const { input, signals } = await workflowRecord(bed.client, prWorkflowId(payload.repository.owner.login, payload.repository.name, number));
    expect(signals).toEqual([
      {
        name: PR_EVENT_SIGNAL,
        event: {
          type: 'command',
          deliveryId,
          source: 'review',
          actor: payload.sender.login,
          command: { name: 'approve', extraArgs: [] },
          reviewCommitSha: payload.review.commit_id,
          // A review counts once by its id, and never approves a plan posted after it.
          reviewId: payload.review.id,
          createdAt: new Date(payload.review.submitted_at!).toISOString(),
        },
      },
    ]);
    expect(input.snapshot).toMatchObject({ headSha: payload.pull_request.head.sha, author: payload.pull_request.user.login });
  });

  it('a commented review starts no workflow', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request_review.submitted'](), number);
    expect(payload.review.state).toBe('commented');
    await receive(bed.probot, 'pull_request_review', payload);
    expect(await workflowExists(bed.client, prWorkflowId(payload.repository.owner.login, payload.repository.name, number))).toBe(false);
  });
});
