import { createLogger } from '../../app/logger.ts';
import { Writable } from 'node:stream';
import { chunkedPost } from '../helpers/chunked-post.ts';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type ServerConfig } from '../../app/config.ts';
import { startWebhookServer, type WebhookServer } from '../../app/http.ts';
import { PR_EVENT_SIGNAL, prWorkflowId } from '../../shared/contracts.ts';
import { fixtures, withPrNumber } from './fixtures/webhooks.ts';
import {
  TASK_QUEUE,
  WEBHOOK_SECRET,
  deliveryId,
  forbidNetworkExceptLoopback,
  freshPrNumber,
  post,
  privateKeyPem,
  sign,
  silentLogger,
  startTemporal,
  workflowExists,
  workflowRecord,
} from './support.ts';

let env: TestWorkflowEnvironment;
let client: Client;
let config: ServerConfig;
let web: WebhookServer;

beforeAll(async () => {
  env = await startTemporal();
  client = env.client;
  config = loadConfig({
    APP_ID: '12345',
    PRIVATE_KEY: privateKeyPem(),
    WEBHOOK_SECRET,
    GHE_HOST: 'ghe.example.com',
    TEMPORAL_TASK_QUEUE: TASK_QUEUE,
    PORT: '0',
  });
  web = await startWebhookServer({ config, client, logger: silentLogger });
});
afterAll(async () => {
  await web?.close();
  await env?.teardown();
});
const network = forbidNetworkExceptLoopback();

function openedPr() {
  const number = freshPrNumber();
  const payload = withPrNumber(fixtures['pull_request.opened'](), number);
  return { payload, workflowId: prWorkflowId(payload.repository.owner.login, payload.repository.name, number) };
}

describe('webhook endpoint', () => {
  it('answers 2xx only once the signal is in Temporal', async () => {
    const { payload, workflowId } = openedPr();
    const id = deliveryId();
    const res = await post(web.port, 'pull_request', payload, { id });
    expect(res.status).toBe(200);
    // Read straight after the response: nothing may still be in flight.
    const { signals } = await workflowRecord(client, workflowId);
    expect(signals).toEqual([{ name: PR_EVENT_SIGNAL, event: expect.objectContaining({ type: 'pr-updated', deliveryId: id }) }]);
  });

  it('signals a redelivered delivery id once', async () => {
    const { payload, workflowId } = openedPr();
    const id = deliveryId();
    expect((await post(web.port, 'pull_request', payload, { id })).status).toBe(200);
    expect((await post(web.port, 'pull_request', payload, { id })).status).toBe(200);
    expect((await workflowRecord(client, workflowId)).signals.map((s) => s.event.deliveryId)).toEqual([id]);
  });

  it('answers 2xx for an event it ignores, and starts nothing', async () => {
    const number = freshPrNumber();
    const payload = withPrNumber(fixtures['pull_request.labeled'](), number);
    expect((await post(web.port, 'pull_request', payload)).status).toBe(200);
    expect(await workflowExists(client, prWorkflowId(payload.repository.owner.login, payload.repository.name, number))).toBe(false);
  });

  it.each([
    ['a wrong secret', sign('{}', 'not-the-secret')],
    ['a signature of another body', sign('{"action":"opened"}')],
    ['a malformed signature', 'sha256=zz'],
    ['no signature', null],
  ])('rejects %s with 401 and signals nothing', async (_what, signature) => {
    const { payload, workflowId } = openedPr();
    const res = await post(web.port, 'pull_request', payload, { signature });
    expect(res.status).toBe(401);
    expect(await workflowExists(client, workflowId)).toBe(false);
  });

  it('answers 5xx when Temporal does not accept the signal, so GitHub can redeliver', async () => {
    const connection = await Connection.connect({ address: env.address });
    await connection.close();
    const lines: string[] = [];
    const capture = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const broken = await startWebhookServer({ config, client: new Client({ connection }), logger: createLogger('info', capture), port: 0 });
    try {
      const { payload, workflowId } = openedPr();
      const res = await post(broken.port, 'pull_request', payload);
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(await workflowExists(client, workflowId)).toBe(false);
      // The failure is logged by delivery id and message, without the payload the error object carries.
      const failure = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'webhook not delivered; GitHub may redeliver');
      expect(failure).toMatchObject({ event: 'pull_request', errors: [expect.any(String)] });
      expect(lines.join('')).not.toContain(payload.pull_request.title);
      // The same delivery then succeeds against a healthy Temporal.
      expect((await post(web.port, 'pull_request', payload)).status).toBe(200);
      expect(await workflowExists(client, workflowId)).toBe(true);
    } finally {
      await broken.close();
    }
  });

  it('rejects other routes, methods and content types', async () => {
    const { payload } = openedPr();
    expect((await post(web.port, 'pull_request', payload, { path: '/elsewhere' })).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${web.port}/api/github/webhooks`)).status).toBe(405);
    const form = await fetch(`http://127.0.0.1:${web.port}/api/github/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'ping', 'x-github-delivery': deliveryId() },
      body: 'payload=%7B%7D',
    });
    expect(form.status).toBe(415);
  });

  it('serves GET /healthz', async () => {
    const res = await fetch(`http://127.0.0.1:${web.port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
  });

  it('points Probot at the GitHub Enterprise API from GHE_HOST', async () => {
    const octokit = await web.probot.auth();
    expect(octokit.request.endpoint.DEFAULTS.baseUrl).toBe('https://ghe.example.com/api/v3');
  });

  it('would notice a GitHub API call (the no-network guard is armed)', async () => {
    const octokit = await web.probot.auth();
    await expect(octokit.request('GET /app', { request: { retries: 0 } })).rejects.toThrow(/Nock: Disallowed net connect/);
    expect(network.unexpected.length).toBeGreaterThan(0);
    expect(network.unexpected.every((r) => r === 'GET https://ghe.example.com/api/v3/app')).toBe(true);
    network.unexpected.length = 0;
  });
});

const stream = (port: number, headers: Record<string, string>, pieces: Array<string | Buffer>, opts: { gapMs?: number; hold?: boolean } = {}) =>
  chunkedPost(port, '/api/github/webhooks', headers, pieces, opts);

describe('webhook endpoint: signature while streaming, bounded', () => {
  // nock's interceptors hold a socket's bytes until the request is complete: a slow sender would not be slow.
  beforeAll(() => void network.nock().restore());
  afterAll(() => void network.nock().activate());
  const headersFor = (body: string, signature = sign(body)) => ({ 'x-github-event': 'pull_request', 'x-github-delivery': deliveryId(), 'x-hub-signature-256': signature });

  it('verifies a body streamed in pieces and signals it', async () => {
    const { payload, workflowId } = openedPr();
    const body = JSON.stringify(payload);
    const pieces = [body.slice(0, 100), body.slice(100, 2000), body.slice(2000)];
    const { done } = stream(web.port, headersFor(body), pieces, { gapMs: 50 });
    expect((await done).status).toBe(200);
    expect(await workflowExists(client, workflowId)).toBe(true);
  });

  it('rejects a slowly streamed body whose signature does not match with 401, and signals nothing', async () => {
    const { payload, workflowId } = openedPr();
    const body = JSON.stringify(payload);
    const pieces = Array.from({ length: 5 }, (_, i) => body.slice((i * body.length) / 5, ((i + 1) * body.length) / 5));
    const { done } = stream(web.port, headersFor(body, sign(body, 'not-the-secret')), pieces, { gapMs: 150 });
    expect(await done).toEqual({ status: 401, text: 'signature does not match\n' });
    expect(await workflowExists(client, workflowId)).toBe(false);
  });

  it('answers 413 to a body over the cap, declared or streamed, and signals nothing', async () => {
    const small = await startWebhookServer({ config, client, logger: silentLogger, port: 0, limits: { maxBodyBytes: 4096 } });
    try {
      const { payload, workflowId } = openedPr();
      const body = JSON.stringify({ ...payload, padding: 'x'.repeat(8192) });
      // Chunked: no content-length, so the cap is found while reading.
      const chunked = stream(small.port, headersFor(body), [body.slice(0, 3000), body.slice(3000)], { gapMs: 20 });
      expect((await chunked.done).status).toBe(413);
      const declared = await post(small.port, 'pull_request', { ...payload, padding: 'x'.repeat(8192) });
      expect(declared.status).toBe(413);
      expect(await workflowExists(client, workflowId)).toBe(false);
    } finally {
      await small.close();
    }
  });

  it('answers 408 to a body that does not arrive in time, and frees its slot', async () => {
    const impatient = await startWebhookServer({ config, client, logger: silentLogger, port: 0, limits: { maxUnverified: 1, bodyTimeoutMs: 300 } });
    try {
      const { payload, workflowId } = openedPr();
      const body = JSON.stringify(payload);
      const stalled = stream(impatient.port, headersFor(body), [body.slice(0, 10)], { hold: true });
      expect((await stalled.done).status).toBe(408);
      expect((await post(impatient.port, 'pull_request', payload)).status).toBe(200);
      expect(await workflowExists(client, workflowId)).toBe(true);
    } finally {
      await impatient.close();
    }
  });

  it('answers 503 at once beyond the unverified bodies in flight; the slots free up afterwards', async () => {
    const narrow = await startWebhookServer({ config, client, logger: silentLogger, port: 0, limits: { maxUnverified: 2 } });
    try {
      const { payload, workflowId } = openedPr();
      const body = JSON.stringify(payload);
      // Two senders that never finish their bodies hold both slots.
      const held = [0, 1].map(() => stream(narrow.port, headersFor(body), [body.slice(0, 10)], { hold: true }));
      await Promise.all(held.map((h) => h.written));
      // Both are inside the server once a probe (a bad signature: never signalled) is turned away unread.
      const deadline = Date.now() + 10_000;
      while ((await post(narrow.port, 'pull_request', {}, { signature: sign('{}', 'wrong') })).status !== 503) {
        if (Date.now() > deadline) throw new Error('the held bodies never reached the server');
      }
      const third = await post(narrow.port, 'pull_request', payload);
      expect(third.status).toBe(503);
      expect(await third.text()).toBe('busy, please retry\n');
      expect(await workflowExists(client, workflowId)).toBe(false);
      for (const h of held) h.finish();
      for (const h of held) expect((await h.done).status).toBe(401);
      expect((await post(narrow.port, 'pull_request', payload)).status).toBe(200);
      expect(await workflowExists(client, workflowId)).toBe(true);
    } finally {
      await narrow.close();
    }
  });
});
