import { describe, expect, it } from 'vitest';
import { PR_EVENT_SIGNAL, prWorkflowId } from '../../../shared/contracts.ts';
import { OPERATOR_SIGNAL, OPERATOR_WORKFLOW_TYPE, operatorWorkflowId } from '../../../shared/operator.ts';
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

function prComment(body: string) {
  const number = freshPrNumber();
  const payload = withPrNumber(fixtures['issue_comment.created (pull request)'](body), number);
  return { payload, number, workflowId: prWorkflowId(payload.repository.owner.login, payload.repository.name, number) };
}

describe('issue_comment.created', () => {
  it('a command on a PR → command event from the comment; the workflow starts without a snapshot', async () => {
    const { payload, number, workflowId } = prComment('/plan -d infra/prod -w staging -- -refresh=false\nplease');
    const deliveryId = await receive(bed.probot, 'issue_comment', payload);
    expect(await workflowRecord(bed.client, workflowId)).toMatchObject({
      input: {
        pr: {
          number,
          repo: {
            owner: payload.repository.owner.login,
            name: payload.repository.name,
            installationId: payload.installation.id,
            cloneUrl: payload.repository.clone_url,
          },
        },
      },
      signals: [
        {
          name: PR_EVENT_SIGNAL,
          event: {
            type: 'command',
            deliveryId,
            source: 'comment',
            actor: payload.sender.login,
            commentId: payload.comment.id,
            command: { name: 'plan', dir: 'infra/prod', workspace: 'staging', extraArgs: ['-refresh=false'] },
          },
        },
      ],
    });
    const { input, signals } = await workflowRecord(bed.client, workflowId);
    expect(input.snapshot).toBeUndefined();
    expect(signals).toHaveLength(1);
  });

  it('an unknown command → bad-command with the suggestion', async () => {
    const { payload, workflowId } = prComment('/aply');
    const deliveryId = await receive(bed.probot, 'issue_comment', payload);
    const { signals } = await workflowRecord(bed.client, workflowId);
    expect(signals).toEqual([
      {
        name: PR_EVENT_SIGNAL,
        event: {
          type: 'bad-command',
          deliveryId,
          actor: payload.sender.login,
          commentId: payload.comment.id,
          createdAt: new Date(payload.comment.created_at).toISOString(),
          parse: { kind: 'unknown', word: 'aply', suggestion: 'apply' },
        },
      },
    ]);
  });

  it('an invalid command → bad-command with the error', async () => {
    const { payload, workflowId } = prComment('/apply -d infra');
    await receive(bed.probot, 'issue_comment', payload);
    const { signals } = await workflowRecord(bed.client, workflowId);
    expect(signals).toHaveLength(1);
    expect(signals[0]!.event).toMatchObject({
      type: 'bad-command',
      commentId: payload.comment.id,
      parse: { kind: 'invalid', name: 'apply', error: expect.stringMatching(/\/apply does not accept -d/) },
    });
  });

  it('a comment that is not a command starts no workflow', async () => {
    const { payload, workflowId } = prComment('Looks good to me, will /apply after lunch');
    await receive(bed.probot, 'issue_comment', payload);
    expect(await workflowExists(bed.client, workflowId)).toBe(false);
  });

  it('a command on an issue (not a PR) starts no workflow', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['issue_comment.created (issue)']('/plan'), number);
    expect(payload.issue.pull_request).toBeUndefined();
    await receive(bed.probot, 'issue_comment', payload);
    expect(await workflowExists(bed.client, prWorkflowId(payload.repository.owner.login, payload.repository.name, number))).toBe(false);
  });

  it('a command from a bot starts no workflow', async () => {
    const { payload, workflowId } = prComment('/apply');
    payload.sender.type = 'Bot';
    payload.sender.login = 'terrapin[bot]';
    await receive(bed.probot, 'issue_comment', payload);
    expect(await workflowExists(bed.client, workflowId)).toBe(false);
  });

  it('a command without an installation starts no workflow', async () => {
    const { payload, workflowId } = prComment('/apply');
    delete payload.installation;
    await receive(bed.probot, 'issue_comment', payload);
    expect(await workflowExists(bed.client, workflowId)).toBe(false);
  });

  describe('on an operator\'s gate issue', () => {
    const gate = (title: string, body: string) => {
      const payload = fixtures['issue_comment.created (gate issue)'](title, body);
      payload.issue.number = freshPrNumber();
      const repo = { owner: payload.repository.owner.login, name: payload.repository.name };
      return { payload, repo };
    };

    it('a command goes to the request waiting behind the issue, as a signal (nothing is started)', async () => {
      const { payload, repo } = gate('Destroy requested: network', '/approve');
      const workflowId = operatorWorkflowId(repo, 'network', 'destroy');
      // The request is running (no worker here: it waits forever, which is all this test needs).
      await bed.client.workflow.start(OPERATOR_WORKFLOW_TYPE, { workflowId, taskQueue: TASK_QUEUE, args: [{}] });
      try {
        const deliveryId = await receive(bed.probot, 'issue_comment', payload);
        const { signals } = await workflowRecord(bed.client, workflowId);
        expect(signals).toEqual([
          {
            name: OPERATOR_SIGNAL,
            event: {
              type: 'command',
              command: 'approve',
              deliveryId,
              actor: payload.sender.login,
              commentId: payload.comment.id,
              issueNumber: payload.issue.number,
              createdAt: new Date(payload.comment.created_at).toISOString(),
            },
          },
        ]);
      } finally {
        await bed.client.workflow.getHandle(workflowId).terminate();
      }
    });

    it('a comment on a request that is over starts nothing', async () => {
      const { payload, repo } = gate('Apply requested: app-over', '/approve');
      await receive(bed.probot, 'issue_comment', payload);
      expect(await workflowExists(bed.client, operatorWorkflowId(repo, 'app-over', 'apply'))).toBe(false);
    });

    it('the title without the label is just an issue', async () => {
      const { payload, repo } = gate('Apply requested: app-unlabelled', '/approve');
      payload.issue.labels = [];
      const workflowId = operatorWorkflowId(repo, 'app-unlabelled', 'apply');
      await bed.client.workflow.start(OPERATOR_WORKFLOW_TYPE, { workflowId, taskQueue: TASK_QUEUE, args: [{}] });
      try {
        await receive(bed.probot, 'issue_comment', payload);
        expect((await workflowRecord(bed.client, workflowId)).signals).toEqual([]);
      } finally {
        await bed.client.workflow.getHandle(workflowId).terminate();
      }
    });
  });
});
