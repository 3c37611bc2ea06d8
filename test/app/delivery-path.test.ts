// Every kind of webhook Terrapin acts on, posted to the real endpoint with real signatures, takes the one
// delivery path: the repository allowlist, deduplication by X-GitHub-Delivery, 503 when Temporal fails.
// What reached Temporal is read back from the dev server's histories.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type ServerConfig } from '../../app/config.ts';
import { startWebhookServer, type WebhookServer } from '../../app/http.ts';
import { DEPLOY_SIGNAL, RECONCILE_SIGNAL, deployWorkflowId, driftReconcileId, prWorkflowId, pushWorkflowId, type RepoRef } from '../../shared/contracts.ts';
import { fixtures, withPrNumber } from './fixtures/webhooks.ts';
import { TASK_QUEUE, WEBHOOK_SECRET, deliveryId, forbidNetworkExceptLoopback, freshPrNumber, post, privateKeyPem, silentLogger, startTemporal, workflowExists, workflowRecord } from './support.ts';

const ALLOWED = 'acme';
let env: TestWorkflowEnvironment;
let config: ServerConfig;
let web: WebhookServer;

beforeAll(async () => {
  env = await startTemporal();
  config = loadConfig({
    APP_ID: '12345',
    PRIVATE_KEY: privateKeyPem(),
    WEBHOOK_SECRET,
    TEMPORAL_TASK_QUEUE: TASK_QUEUE,
    TERRAPIN_REPO_ALLOWLIST: `${ALLOWED}/*`,
    PORT: '0',
  });
  web = await startWebhookServer({ config, client: env.client, logger: silentLogger });
});
afterAll(async () => {
  await web?.close();
  await env?.teardown();
});
forbidNetworkExceptLoopback();

type Payload = Record<string, any>;

/** The payload's repository, moved to `owner` (the allowlist decides by owner/repo). */
function ownedBy(payload: Payload, owner: string): { payload: Payload; repo: RepoRef } {
  payload.repository.owner.login = owner;
  payload.repository.full_name = `${owner}/${payload.repository.name}`;
  return { payload, repo: { owner, name: payload.repository.name, installationId: payload.installation.id, cloneUrl: payload.repository.clone_url } };
}

/** One webhook of each kind, each aimed at a workflow no other test touches. */
const kinds = {
  'pull_request.opened': (owner: string) => {
    const number = freshPrNumber();
    const { payload, repo } = ownedBy(withPrNumber(fixtures['pull_request.opened'](), number), owner);
    return { event: 'pull_request', payload, workflowId: prWorkflowId(repo.owner, repo.name, number) };
  },
  'issue_comment.created on a drift issue': (owner: string) => {
    const project = `net${freshPrNumber()}`;
    const { payload, repo } = ownedBy(fixtures['issue_comment.created (drift issue)'](project, '/approve'), owner);
    return { event: 'issue_comment', payload, workflowId: driftReconcileId(repo, project) };
  },
  'check_run.requested_action on a deploy check': (owner: string) => {
    const project = `web${freshPrNumber()}`;
    const { payload, repo } = ownedBy(fixtures['check_run.requested_action']('approve'), owner);
    payload.check_run.external_id = deployWorkflowId(repo, project);
    return { event: 'check_run', payload, workflowId: deployWorkflowId(repo, project) };
  },
  'push to the default branch': (owner: string) => {
    const { payload, repo } = ownedBy(fixtures['push (default branch)'](), owner);
    payload.after = randomBytes(20).toString('hex');
    return { event: 'push', payload, workflowId: pushWorkflowId(repo, payload.after) };
  },
};
const kindNames = Object.keys(kinds) as (keyof typeof kinds)[];

describe('one delivery path', () => {
  it('a drift-issue command delivered again under the same X-GitHub-Delivery reaches its reconcile workflow once', async () => {
    const { event, payload, workflowId } = kinds['issue_comment.created on a drift issue'](ALLOWED);
    const id = deliveryId();
    expect((await post(web.port, event, payload, { id })).status).toBe(200);
    expect((await post(web.port, event, payload, { id })).status).toBe(200);
    const { signals } = await workflowRecord(env.client, workflowId);
    expect(signals).toEqual([{ name: RECONCILE_SIGNAL, event: expect.objectContaining({ type: 'approve', deliveryId: id, commentId: payload.comment.id }) }]);
  });

  it('a deploy-check Approve delivered again under the same X-GitHub-Delivery reaches its deploy queue once', async () => {
    const { event, payload, workflowId } = kinds['check_run.requested_action on a deploy check'](ALLOWED);
    const id = deliveryId();
    // Two at once (one attempt shared), then one more (remembered).
    const replies = [...(await Promise.all([post(web.port, event, payload, { id }), post(web.port, event, payload, { id })])), await post(web.port, event, payload, { id })];
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
    const { signals } = await workflowRecord(env.client, workflowId);
    expect(signals).toEqual([{ name: DEPLOY_SIGNAL, event: { type: 'approve', deliveryId: id, actor: payload.sender.login, sha: payload.check_run.head_sha } }]);
  });

  it('a push to the default branch starts its workflow, once', async () => {
    const { event, payload, workflowId } = kinds['push to the default branch'](ALLOWED);
    const id = deliveryId();
    expect((await post(web.port, event, payload, { id })).status).toBe(200);
    expect((await post(web.port, event, payload, { id })).status).toBe(200);
    expect(await workflowRecord(env.client, workflowId)).toMatchObject({ input: { before: payload.before, after: payload.after }, signals: [] });
  });

  it('a repository outside the allowlist reaches nothing, whatever the event', async () => {
    for (const kind of kindNames) {
      const { event, payload, workflowId } = kinds[kind]('outsider');
      expect((await post(web.port, event, payload)).status, kind).toBe(200);
      // The handler has finished by the time the endpoint answers: had it reached Temporal, the workflow would exist.
      expect(await workflowExists(env.client, workflowId), kind).toBe(false);
    }
  });

  it('every event is answered 503 when Temporal cannot take it, so GitHub redelivers', async () => {
    const connection = await Connection.connect({ address: env.address });
    await connection.close();
    const broken = await startWebhookServer({ config, client: new Client({ connection }), logger: silentLogger, port: 0 });
    try {
      for (const kind of kindNames) {
        const { event, payload } = kinds[kind](ALLOWED);
        expect((await post(broken.port, event, payload)).status, kind).toBe(503);
      }
    } finally {
      await broken.close();
    }
  });
});
