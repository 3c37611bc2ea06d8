// No webhook is lost (issue 13). Temporal is stopped while 20 webhooks arrive over real HTTP with real
// signatures: the server answers each 503, as GitHub then records in the App's delivery log. Temporal comes
// back; the reconciler (the production Schedule, triggered at start) reads that log (mocked at HTTP, two
// pages, with attempts that must not be sent again), asks GitHub to redeliver each failed webhook once; the
// test then delivers them as GitHub would, and each takes effect exactly once. A second run asks for nothing.
// Then the sweep: a missed `synchronize` and a missed `closed`, caught by comparing open PRs with workflows.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type ScheduleHandle } from '@temporalio/client';
import nock from 'nock';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig, type ServerConfig } from '../../app/config.ts';
import { startWebhookServer, WEBHOOK_PATH, type WebhookServer } from '../../app/http.ts';
import { connectTemporal, type TemporalHandle } from '../../app/temporal.ts';
import { startWebhookReconciler } from '../../app/webhook-reconcile-schedule.ts';
import { runTerrapinWorker } from '../../app/worker.ts';
import { prStateQuery, prWorkflowId, type PrStatus } from '../../shared/contracts.ts';
import type { WebhookReconcileResult } from '../../workflows/webhook-reconcile.ts';
import { sendWebhook } from '../../scripts/webhook-deliveries.ts';
import { freePort } from '../helpers/free-port.ts';
import '../helpers/github-mock.ts';
import { pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { temporalCliPath } from '../helpers/temporal-cli.ts';

const API = 'https://api.github.com';
const LOST = 20;
const logger = pino({ level: 'silent' });
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

let dataDir: string;
let config: ServerConfig;
let temporalPort: number;
let running: { temporal: TemporalHandle; stopWorker: () => Promise<void> } | undefined;
/** The webhook server keeps its own connection, as a separate `npm run server` would: it outlives Temporal's restart. */
let webConnection: Connection;
let webClient: Client;
let web: WebhookServer;
let schedule: ScheduleHandle | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'terrapin-lost-'));
  temporalPort = await freePort();
  config = loadConfig({
    APP_ID: '1',
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET: 'secret',
    TERRAPIN_DATA_DIR: dataDir,
    TEMPORAL_TASK_QUEUE: 'lost-webhooks-test',
    TEMPORAL_CLI_PATH: temporalCliPath(),
    // Runs come from the start trigger and the test's own triggers, not from the clock.
    TERRAPIN_WEBHOOK_RECONCILE_INTERVAL: '600',
  });
  await startTemporal();
  await offNock(async () => {
    webConnection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  });
  webClient = new Client({ connection: webConnection, namespace: config.temporal.namespace });
  web = await startWebhookServer({ config, client: webClient, logger, port: 0 });
}, 120_000);

afterAll(async () => {
  await web?.close();
  await webConnection?.close();
  await stopTemporal();
  nock.cleanAll();
  nock.enableNetConnect();
  await rm(dataDir, { recursive: true, force: true });
});

/** nock's interceptors break grpc-js connection set-up: connect with them off. */
async function offNock<T>(fn: () => Promise<T>): Promise<T> {
  nock.restore();
  try {
    return await fn();
  } finally {
    nock.activate();
    nock.disableNetConnect();
    nock.enableNetConnect((host) => host.startsWith('127.0.0.1') || host.startsWith('localhost'));
  }
}

async function startTemporal(): Promise<void> {
  const uiPort = await freePort();
  const temporal = await offNock(() => connectTemporal(config.temporal, { dataDir, logger, port: temporalPort, uiPort }));
  const stopWorker = await runTerrapinWorker({ config, logger, temporal });
  running = { temporal, stopWorker };
}

async function stopTemporal(): Promise<void> {
  if (!running) return;
  await running.stopWorker();
  await running.temporal.close();
  running = undefined;
}

const url = () => `http://127.0.0.1:${web.port}${WEBHOOK_PATH}`;
const deliver = (event: string, payload: unknown, deliveryId: string) => sendWebhook({ url: url(), secret: 'secret', event, payload, appId: '1', deliveryId });

function draftPr(repo: string, number: number, headSha: string): TestPr {
  return { owner: 'acme', repo, number, installationId: 42, cloneUrl: `https://github.com/acme/${repo}.git`, headSha, headRef: `f${number}`, baseRef: 'main', baseSha: 'b'.repeat(40), author: 'alice', draft: true };
}

const status = (pr: TestPr): Promise<PrStatus> => running!.temporal.client.workflow.getHandle(prWorkflowId(pr.owner, pr.repo, pr.number)).query(prStateQuery);

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One reconciler run, as at a start (the Schedule created and triggered) or when its time comes; its result. */
async function reconcileRun(): Promise<WebhookReconcileResult> {
  const before = schedule ? (await schedule.describe()).info.recentActions.length : 0;
  if (schedule) await schedule.trigger();
  else schedule = await startWebhookReconciler(running!.temporal.client, { taskQueue: config.temporal.taskQueue, intervalMinutes: config.webhookReconcileMinutes! });
  const handle = schedule;
  const action = await waitFor('the reconciler run', async () => (await handle.describe()).info.recentActions[before]);
  const { workflowId, firstExecutionRunId } = action.action.workflow;
  return running!.temporal.client.workflow.getHandle(workflowId, firstExecutionRunId).result();
}

/** GitHub's delivery log entry for one attempt. */
function attempt(id: number, guid: string, statusCode: number, deliveredAt: Date, redelivery = false) {
  return {
    id,
    guid,
    delivered_at: deliveredAt.toISOString(),
    redelivery,
    duration: 8.01,
    status: statusCode === 200 ? 'OK' : statusCode === 0 ? 'timed out' : `Invalid HTTP Response: ${statusCode}`,
    status_code: statusCode,
    event: 'pull_request',
    action: 'opened',
    installation_id: 42,
    repository_id: 1001,
    throttled_at: null,
  };
}

/** The log as GitHub lists it: newest first, 100 a page, the next page by cursor in the Link header. */
function mockDeliveryLog(entries: ReturnType<typeof attempt>[]): void {
  const sorted = entries.toSorted((a, b) => Date.parse(b.delivered_at) - Date.parse(a.delivered_at));
  const pageSize = Math.ceil(sorted.length / 2);
  nock(API)
    .get('/app/hook/deliveries')
    .query({ per_page: '100' })
    .reply(200, sorted.slice(0, pageSize), { link: `<${API}/app/hook/deliveries?per_page=100&cursor=v1_page2>; rel="next"` })
    .get('/app/hook/deliveries')
    .query({ per_page: '100', cursor: 'v1_page2' })
    .reply(200, sorted.slice(pageSize));
}

function mockInstallations(installations: Array<{ id: number }>): void {
  nock(API).get('/app/installations').query(true).reply(200, installations.map((i) => ({ id: i.id, account: { login: 'acme' }, app_id: 1 })));
}

test(`${LOST} webhooks answered 503 while Temporal was down are redelivered once each, and take effect once`, { timeout: 300_000 }, async () => {
  const prs = Array.from({ length: LOST }, (_, i) => draftPr('lost', i + 1, `${(i + 1).toString(16).padStart(2, '0')}`.padEnd(40, 'a')));
  const guids = prs.map(() => crypto.randomUUID());

  await stopTemporal();
  const answers = await Promise.all(prs.map((pr, i) => deliver('pull_request', pullRequestEvent('opened', pr), guids[i]!)));
  expect(answers.map((a) => a.status)).toEqual(prs.map(() => 503));

  // What GitHub's log now holds, besides the 20: a webhook that failed then succeeded on its own second attempt,
  // one refused as malformed (400: sending it again would fail the same way), one whose redelivery someone
  // already asked for, and one older than the window (which also ends the reading).
  const now = Date.now();
  const recovered = crypto.randomUUID();
  const askedBefore = crypto.randomUUID();
  const log = [
    ...guids.map((guid, i) => attempt(5000 + i, guid, 503, new Date(now - 60_000 + i * 100))),
    attempt(6000, recovered, 503, new Date(now - 600_000)),
    attempt(6001, recovered, 200, new Date(now - 540_000)),
    attempt(6002, crypto.randomUUID(), 400, new Date(now - 500_000)),
    attempt(6003, askedBefore, 503, new Date(now - 480_000)),
    attempt(6004, askedBefore, 0, new Date(now - 470_000), true),
    attempt(6005, crypto.randomUUID(), 503, new Date(now - 7 * 3600_000)),
  ];
  mockDeliveryLog(log);
  const redeliveryRequests: number[] = [];
  for (let i = 0; i < LOST; i++) {
    nock(API)
      .post(`/app/hook/deliveries/${5000 + i}/attempts`)
      .reply(202, () => {
        redeliveryRequests.push(5000 + i);
        return {};
      });
  }
  mockInstallations([]);

  await startTemporal();
  // The webhook server's own connection finds Temporal again.
  await offNock(() => webClient.workflowService.getSystemInfo({}));
  const first = await reconcileRun();
  expect(first.requested.toSorted()).toEqual(guids.toSorted());
  expect(redeliveryRequests.toSorted()).toEqual(guids.map((_, i) => 5000 + i));
  expect(nock.pendingMocks()).toEqual([]);

  // GitHub redelivers: same X-GitHub-Delivery guid, same payload, real signature. Some twice (a proxy retry).
  const redelivered = await Promise.all(prs.map((pr, i) => deliver('pull_request', pullRequestEvent('opened', pr), guids[i]!)));
  expect(redelivered.map((a) => a.status)).toEqual(prs.map(() => 200));
  const again = await Promise.all(prs.slice(0, 5).map((pr, i) => deliver('pull_request', pullRequestEvent('opened', pr), guids[i]!)));
  expect(again.map((a) => a.status)).toEqual(prs.slice(0, 5).map(() => 200));
  for (const [i, pr] of prs.entries()) {
    const state = await waitFor(`#${pr.number} handled`, async () => {
      const s = await status(pr);
      return s.handled.includes(guids[i]!) ? s : undefined;
    });
    expect(state.headSha).toBe(pr.headSha);
    expect(state.handled.filter((id) => id === guids[i]), `#${pr.number}`).toHaveLength(1);
  }

  // The second run finds the same log (GitHub's may lag behind): nothing is asked for again.
  mockDeliveryLog(log);
  mockInstallations([]);
  const second = await reconcileRun();
  expect(second.requested).toEqual([]);
  expect(second.remembered.map((r) => r.guid).toSorted()).toEqual(guids.toSorted());
  expect(redeliveryRequests).toHaveLength(LOST);
  expect(nock.pendingMocks()).toEqual([]);
  console.log(`lost webhooks: ${LOST} answered 503 while Temporal was down; ${first.requested.length} redeliveries requested, ${second.requested.length} on the next run; each handled once`);
});

test('the sweep catches a missed synchronize and a missed closed', { timeout: 180_000 }, async () => {
  const behind = draftPr('swept', 31, 'c'.repeat(40));
  const closing = draftPr('swept', 32, 'd'.repeat(40));
  const untouched = draftPr('swept', 33, 'e'.repeat(40));
  for (const pr of [behind, closing, untouched]) {
    const guid = crypto.randomUUID();
    expect((await deliver('pull_request', pullRequestEvent('opened', pr), guid)).status).toBe(200);
    await waitFor(`#${pr.number} opened`, async () => ((await status(pr)).handled.includes(guid) ? true : undefined));
  }
  // Meanwhile on GitHub: #31 got a push and #32 was closed; neither webhook came.
  const pushed = 'f'.repeat(40);
  const pullJson = (pr: TestPr, state: 'open' | 'closed', headSha = pr.headSha) => {
    const p = pullRequestEvent('opened', { ...pr, headSha }).pull_request;
    return { ...p, state, updated_at: new Date().toISOString(), merged: false, merge_commit_sha: null };
  };
  mockDeliveryLog([]);
  mockInstallations([{ id: 42 }]);
  nock(API)
    .persist()
    .post('/app/installations/42/access_tokens')
    .reply(201, () => ({ token: 'ghs_testtoken000000000000000000000000', expires_at: new Date(Date.now() + 3600_000).toISOString() }));
  const repository = { id: 1002, name: 'swept', full_name: 'acme/swept', owner: { login: 'acme' }, clone_url: behind.cloneUrl, private: true };
  nock(API)
    .get('/installation/repositories')
    .query(true)
    .reply(200, { total_count: 1, repositories: [repository] })
    .get('/repos/acme/swept/pulls')
    .query((q) => q.state === 'open')
    .reply(200, [pullJson(behind, 'open', pushed), pullJson(untouched, 'open')])
    .get('/repos/acme/swept/pulls/32')
    .reply(200, pullJson(closing, 'closed'));

  const run = await reconcileRun();
  const id = (pr: TestPr) => prWorkflowId(pr.owner, pr.repo, pr.number);
  expect(run.sweep).toMatchObject({ synchronized: [id(behind)], closed: [id(closing)] });
  expect(run.sweep!.checked).toBe(2);

  const synced = await status(behind);
  expect(synced.headSha).toBe(pushed);
  expect(synced.handled).toContain(`sweep-synchronize:${id(behind)}@${pushed}`);
  expect((await status(untouched)).headSha).toBe(untouched.headSha);
  const outcome = await running!.temporal.client.workflow.getHandle(id(closing)).result();
  expect(outcome).toMatchObject({ merged: false });
  expect(nock.pendingMocks().filter((m) => !m.includes('access_tokens'))).toEqual([]);
});

test('every worker start keeps one Schedule: the same one again, or brought up to a new interval', { timeout: 120_000 }, async () => {
  // Each start also triggers a run; runs that overlap are skipped, so the log is read once or twice here.
  nock(API).persist().get('/app/hook/deliveries').query(true).reply(200, []).get('/app/installations').query(true).reply(200, []);
  try {
    const client = running!.temporal.client;
    const opts = { taskQueue: config.temporal.taskQueue, intervalMinutes: 600 };
    await startWebhookReconciler(client, opts);
    // A second worker starting finds it, and leaves it as it is.
    const same = await startWebhookReconciler(client, opts);
    expect((await same.describe()).spec.intervals?.map((i) => i.every)).toEqual([600 * 60_000]);
    const handle = await startWebhookReconciler(client, { ...opts, intervalMinutes: 15 });
    expect((await handle.describe()).spec.intervals?.map((i) => i.every)).toEqual([15 * 60_000]);
    // Wait for the triggered runs before the mocks go: none may be left calling GitHub after this test.
    await waitFor('the triggered runs', async () => {
      const { recentActions, runningActions } = (await handle.describe()).info;
      return recentActions.length > 0 && runningActions.length === 0 ? true : undefined;
    });
  } finally {
    nock.cleanAll();
  }
});
