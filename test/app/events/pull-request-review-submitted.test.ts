import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Probot } from 'probot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PR_EVENT_SIGNAL, prWorkflowId } from '../../../workflows/types.ts';
import { fixtures, withPrNumber } from '../fixtures/webhooks.ts';
import {
  forbidNetworkExceptLoopback,
  freshPrNumber,
  receive,
  startTemporal,
  testProbot,
  workflowExists,
  workflowRecord,
} from '../support.ts';

let env: TestWorkflowEnvironment;
let client: Client;
let probot: Probot;

beforeAll(async () => {
  env = await startTemporal();
  client = env.client;
  probot = await testProbot(client);
});
afterAll(async () => {
  await env?.teardown();
});
forbidNetworkExceptLoopback();

describe('pull_request_review.submitted', () => {
  it('approved → /approve from the review, pinned to the reviewed commit', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request_review.submitted (approved)'](), number);
    const deliveryId = await receive(probot, 'pull_request_review', payload);
    const { input, signals } = await workflowRecord(client, prWorkflowId(payload.repository.owner.login, payload.repository.name, number));
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
        },
      },
    ]);
    expect(input.snapshot).toMatchObject({ headSha: payload.pull_request.head.sha, author: payload.pull_request.user.login });
  });

  it('a commented review starts no workflow', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request_review.submitted'](), number);
    expect(payload.review.state).toBe('commented');
    await receive(probot, 'pull_request_review', payload);
    expect(await workflowExists(client, prWorkflowId(payload.repository.owner.login, payload.repository.name, number))).toBe(false);
  });
});
