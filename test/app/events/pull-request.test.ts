import { describe, expect, it } from 'vitest';
import { PR_EVENT_SIGNAL, PR_WORKFLOW_TYPE, prWorkflowId } from '../../../shared/contracts.ts';
import { fixtures, withPrNumber } from '../fixtures/webhooks.ts';
import {
  TASK_QUEUE,
  freshPrNumber,
  receive,
  workflowExists,
  workflowRecord,
  webhookTestBed,
} from '../support.ts';

const bed = webhookTestBed();

const idFor = (payload: Record<string, any>, number: number) =>
  prWorkflowId(payload.repository.owner.login, payload.repository.name, number);

describe('pull_request', () => {
  const updates = ['opened', 'reopened', 'ready_for_review', 'synchronize', 'converted_to_draft'] as const;

  it.each(updates)('%s → pr-updated with a snapshot from the payload, starting the PR workflow', async (action) => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures[`pull_request.${action}`](), number);
    const deliveryId = await receive(bed.probot, 'pull_request', payload);

    const pull = payload.pull_request;
    const snapshot = {
      headSha: pull.head.sha,
      headRef: pull.head.ref,
      baseRef: pull.base.ref,
      baseSha: pull.base.sha,
      author: pull.user.login,
      draft: action === 'converted_to_draft',
      headCloneUrl: pull.head.repo.clone_url,
      state: 'open',
      labels: pull.labels.map((l: { name: string }) => l.name),
      fromFork: false,
      updatedAt: pull.updated_at,
    };
    const repo = {
      owner: payload.repository.owner.login,
      name: payload.repository.name,
      installationId: payload.installation.id,
      cloneUrl: payload.repository.clone_url,
    };
    expect(await workflowRecord(bed.client, idFor(payload, number))).toEqual({
      workflowType: PR_WORKFLOW_TYPE,
      taskQueue: TASK_QUEUE,
      input: { pr: { repo, number }, snapshot },
      signals: [
        {
          name: PR_EVENT_SIGNAL,
          event: { type: 'pr-updated', deliveryId, action, actor: payload.sender.login, pr: snapshot },
        },
      ],
    });
  });

  it('takes the head clone URL from the head repository (forks)', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request.opened'](), number);
    payload.pull_request.head.repo.clone_url = 'https://github.com/forker/Hello-World.git';
    await receive(bed.probot, 'pull_request', payload);
    const { input, signals } = await workflowRecord(bed.client, idFor(payload, number));
    expect(input.snapshot?.headCloneUrl).toBe('https://github.com/forker/Hello-World.git');
    expect(input.snapshot?.fromFork).toBe(true);
    expect(input.pr.repo.cloneUrl).toBe(payload.repository.clone_url);
    expect(signals[0]?.event).toMatchObject({ pr: { headCloneUrl: 'https://github.com/forker/Hello-World.git' } });
  });

  it('closed without merge → pr-closed, merged false, no merge commit', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request.closed'](), number);
    expect(payload.pull_request.merge_commit_sha).toBeTruthy(); // GitHub sets a test-merge sha even when unmerged
    const deliveryId = await receive(bed.probot, 'pull_request', payload);
    const { signals, input } = await workflowRecord(bed.client, idFor(payload, number));
    expect(signals).toEqual([
      { name: PR_EVENT_SIGNAL, event: { type: 'pr-closed', deliveryId, actor: payload.sender.login, merged: false } },
    ]);
    expect(input.snapshot?.state).toBe('closed');
  });

  it('closed by merge → pr-closed with merged and merge_commit_sha', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request.closed (merged)'](), number);
    const deliveryId = await receive(bed.probot, 'pull_request', payload);
    const { signals } = await workflowRecord(bed.client, idFor(payload, number));
    expect(signals).toEqual([
      {
        name: PR_EVENT_SIGNAL,
        event: {
          type: 'pr-closed',
          deliveryId,
          actor: payload.sender.login,
          merged: true,
          mergeCommitSha: payload.pull_request.merge_commit_sha,
        },
      },
    ]);
  });

  it('later events on the same PR signal the same workflow, in order', async () => {
    const number = freshPrNumber();
    const opened = withPrNumber(fixtures['pull_request.opened'](), number);
    const synchronize = withPrNumber(fixtures['pull_request.synchronize'](), number);
    const first = await receive(bed.probot, 'pull_request', opened);
    const second = await receive(bed.probot, 'pull_request', synchronize);
    const { signals } = await workflowRecord(bed.client, idFor(opened, number));
    expect(signals.map((s) => [s.event.type, s.event.deliveryId])).toEqual([
      ['pr-updated', first],
      ['pr-updated', second],
    ]);
  });

  it('other actions (labeled) start no workflow', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request.labeled'](), number);
    await receive(bed.probot, 'pull_request', payload);
    expect(await workflowExists(bed.client, idFor(payload, number))).toBe(false);
  });

  it('an event without an installation starts no workflow', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request.opened (no installation)'](), number);
    expect(payload.installation).toBeUndefined();
    await receive(bed.probot, 'pull_request', payload);
    expect(await workflowExists(bed.client, idFor(payload, number))).toBe(false);
  });
});
