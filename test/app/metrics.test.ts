// /metrics, /healthz and /readyz on the real webhook server and on a worker's own listener, after real traffic:
// signed webhooks through the endpoint into a real Temporal, terraform run for real, GitHub calls answered by
// nock. Every family is there, its labels bounded; /readyz fails once Temporal is stopped.
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type ServerConfig } from '../../app/config.ts';
import { startWebhookServer, type WebhookServer } from '../../app/http.ts';
import { runTerrapinWorker, startOpsListener, workerMetricsPort, type RunningWorker } from '../../app/worker.ts';
import { observeRun, watchWorkflows } from '../../app/metrics.ts';
import { runCommand } from '../../activities/process.ts';
import { createGithubClients } from '../../activities/github-client.ts';
import { PROJECT_RUN_WORKFLOW_TYPE, type RunInput } from '../../shared/runs.ts';
import { fixtures, withPrNumber } from './fixtures/webhooks.ts';
import { TASK_QUEUE, forbidNetworkExceptLoopback, freshPrNumber, post, privateKeyPem, silentLogger, startTemporal } from './support.ts';

const GHE = 'https://ghe.metrics.test/api/v3';
const FIXTURE_REPO: string = fixtures['pull_request.opened']().repository.full_name;
let env: TestWorkflowEnvironment;
let config: ServerConfig;
let web: WebhookServer;
let dataDir: string;
/** The last test stops Temporal itself. */
let temporalStopped = false;
beforeAll(async () => {
  env = await startTemporal();
  dataDir = mkdtempSync(join(tmpdir(), 'terrapin-metrics-'));
  config = loadConfig({
    APP_ID: '12345',
    PRIVATE_KEY: privateKeyPem(),
    WEBHOOK_SECRET: 'test-webhook-secret',
    TEMPORAL_TASK_QUEUE: TASK_QUEUE,
    TERRAPIN_REPO_ALLOWLIST: FIXTURE_REPO,
    TERRAPIN_DATA_DIR: dataDir,
    GHE_HOST: 'ghe.metrics.test',
    PORT: '0',
  });
  // Uncached (the server's own call keeps this first one): each scrape below counts afresh.
  watchWorkflows(env.client, { cacheMs: 0 });
  web = await startWebhookServer({ config, client: env.client, logger: silentLogger });
});
afterAll(async () => {
  await web?.close();
  if (!temporalStopped) await env?.teardown();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// After the server started: the dev server is reached as localhost, which this lets through only once connected.
const net = forbidNetworkExceptLoopback();

/** Samples of a Prometheus text exposition: name, labels, value. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
      return { name: m[1], labels, value: Number(m[3]) };
    });
}

const scrape = async (port: number) => {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
};

const value = (text: string, name: string, labels: Record<string, string>) =>
  samples(text).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe('/metrics on the webhook server', () => {
  const prNumbers: number[] = [];

  it('counts webhooks by event and outcome, signals by target, terraform by command, GitHub calls and the rate limit', async () => {
    for (let i = 0; i < 3; i++) {
      const number = freshPrNumber();
      prNumbers.push(number);
      const payload = withPrNumber(fixtures['pull_request.opened'](), number);
      expect((await post(web.port, 'pull_request', payload)).status).toBe(200);
    }
    // Rejected (bad signature), and an event name from outside the known set.
    expect((await post(web.port, 'pull_request', withPrNumber(fixtures['pull_request.opened'](), freshPrNumber()), { signature: `sha256=${'0'.repeat(64)}` })).status).toBe(401);
    expect((await post(web.port, `made_up_${'f'.repeat(40)}`, { zen: 'x' })).status).toBe(200);

    // terraform, for real: a successful and a failing command.
    expect((await runCommand('/usr/local/bin/terraform', ['version'], { cwd: dataDir })).exitCode).toBe(0);
    expect((await runCommand('/usr/local/bin/terraform', ['plan', '-no-such-flag'], { cwd: dataDir })).exitCode).not.toBe(0);

    // A GitHub call through the activities' client: a token request, then the call, with its rate limit.
    const nock = net.nock();
    nock(GHE).post('/app/installations/77/access_tokens').reply(201, { token: 'ghs_test', expires_at: new Date(Date.now() + 3600_000).toISOString() });
    nock(GHE).get('/repos/acme/infra').reply(200, { id: 1 }, { 'x-ratelimit-remaining': '4321', 'x-ratelimit-resource': 'core' });
    await createGithubClients(config.github).forInstallation(77).rest.repos.get({ owner: 'acme', repo: 'infra' });
    expect(nock.isDone()).toBe(true);

    // A project run's result as the worker's sink reports it, with an outcome from outside the known set.
    observeRun('plan', 'planned', 12);
    observeRun('plan', `x${'a'.repeat(40)}`, 1);

    const text = await scrape(web.port);
    expect(value(text, 'terrapin_webhooks_total', { event: 'pull_request', outcome: 'accepted' })).toBeGreaterThanOrEqual(3);
    expect(value(text, 'terrapin_webhooks_total', { event: 'pull_request', outcome: 'rejected' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'terrapin_webhooks_total', { event: 'other', outcome: 'accepted' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'terrapin_webhook_duration_seconds_count', { event: 'pull_request' })).toBeGreaterThanOrEqual(4);
    expect(value(text, 'terrapin_signals_total', { target: 'pr', outcome: 'signalled' })).toBeGreaterThanOrEqual(3);
    expect(value(text, 'terrapin_terraform_duration_seconds_count', { command: 'version', outcome: 'ok' })).toBe(1);
    expect(value(text, 'terrapin_terraform_duration_seconds_count', { command: 'plan', outcome: 'error' })).toBe(1);
    expect(value(text, 'terrapin_github_requests_total', { method: 'GET', status: '2xx' })).toBe(1);
    expect(value(text, 'terrapin_github_requests_total', { method: 'POST', status: '2xx' })).toBe(1);
    expect(value(text, 'terrapin_github_rate_limit_remaining', { resource: 'core' })).toBe(4321);
    expect(value(text, 'terrapin_runs_total', { kind: 'plan', outcome: 'planned' })).toBe(1);
    expect(value(text, 'terrapin_runs_total', { kind: 'plan', outcome: 'other' })).toBe(1);
    expect(value(text, 'terrapin_process_resident_memory_bytes', {})).toBeGreaterThan(0);
  });

  it('counts running workflows by type from Temporal visibility', async () => {
    // The three PR workflows started above (no worker runs them, so they stay running).
    await expect.poll(async () => value(await scrape(web.port), 'terrapin_workflows_running', { type: 'prWorkflow' }) ?? 0, { timeout: 30_000, interval: 1_000 }).toBeGreaterThanOrEqual(3);
    const text = await scrape(web.port);
    for (const type of ['deployWorkflow', 'lockWorkflow', 'operatorRunWorkflow']) expect(value(text, 'terrapin_workflows_running', { type })).toBe(0);
    // No lock, no deploy queue here (test/app/metrics-gauges.test.ts counts real ones).
    expect(value(text, 'terrapin_locks_held', {})).toBe(0);
    expect(value(text, 'terrapin_deploy_queue_depth', {})).toBe(0);
    expect(value(text, 'terrapin_lock_queue_depth', {})).toBe(0);
    // This server has no Terrapin search attributes: no approvals count rather than a wrong one.
    expect(samples(text).filter((s) => s.name === 'terrapin_approvals_waiting')).toEqual([]);
    expect(text).toContain('# TYPE terrapin_approvals_waiting gauge');
  });

  it('has no label value that is a SHA, a PR number, a delivery id or a repository name', async () => {
    const text = await scrape(web.port);
    const values = samples(text).flatMap((s) => Object.values(s.labels));
    expect(values.length).toBeGreaterThan(0);
    for (const v of values) {
      expect(v).not.toMatch(/[0-9a-f]{40}/);
      expect(v).not.toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
      for (const part of [...FIXTURE_REPO.split('/'), 'acme', 'infra']) expect(v).not.toContain(part);
      if (/^\d+$/.test(v)) expect(prNumbers).not.toContain(Number(v));
    }
    expect(text).not.toContain(`made_up_`);
  });

  it('every metric the Grafana dashboard queries is in the scrape', async () => {
    const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/terrapin.json', import.meta.url), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(8);
    const queried = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(terrapin_[a-z_]+)/g)].map((m) => m[1])));
    // A family is in the scrape with its # TYPE line even before its first sample (a labelled counter nobody hit yet).
    const families = new Set([...(await scrape(web.port)).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const family = (name: string) => name.replace(/_(bucket|count|sum)$/, '');
    expect([...queried].filter((name) => !families.has(family(name)))).toEqual([]);
  });
});

describe('probes and a worker process\'s listener', () => {
  const workerQueue = `${TASK_QUEUE}-metrics-worker`;
  let worker: RunningWorker;
  let ops: Awaited<ReturnType<typeof startOpsListener>>;

  beforeAll(async () => {
    // Its own task queue: the PR workflows above are not its business.
    const workerConfig = { ...config, temporal: { ...config.temporal, taskQueue: workerQueue } };
    worker = await runTerrapinWorker({ config: workerConfig, logger: silentLogger, temporal: { nativeConnection: env.nativeConnection, client: env.client } });
    ops = await startOpsListener({ port: 0, client: env.client, worker, logger: silentLogger });
  });
  afterAll(async () => {
    await ops?.close();
    await worker?.();
  });

  it('TERRAPIN_METRICS_PORT: 9464 by default, `off` for none, a bad value refused', () => {
    expect(workerMetricsPort({})).toBe(9464);
    expect(workerMetricsPort({ TERRAPIN_METRICS_PORT: 'off' })).toBeUndefined();
    expect(workerMetricsPort({ TERRAPIN_METRICS_PORT: '9100' })).toBe(9100);
    expect(() => workerMetricsPort({ TERRAPIN_METRICS_PORT: 'ninety' })).toThrow(/TERRAPIN_METRICS_PORT/);
  });

  it('the worker\'s /metrics, /healthz and /readyz answer while it polls', async () => {
    const text = await scrape(ops.port);
    expect(value(text, 'terrapin_worker_polling', {})).toBe(1);
    expect((await fetch(`http://127.0.0.1:${ops.port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${ops.port}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${web.port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${web.port}/readyz`)).status).toBe(200);
  });

  it('a project run on the worker is counted by kind and outcome through the workflow sink, its retried activity too', async () => {
    const repo = { owner: 'acme', name: 'infra', installationId: 77, cloneUrl: `${GHE}/acme/infra.git` };
    // A plan whose repository cannot be fetched (its host does not resolve): the real projectRun's checkout
    // is tried three times, then the run fails.
    const input = {
      repo,
      kind: 'plan',
      record: { trigger: 'manual' },
      recorded: false,
      source: { prNumber: 0, cloneUrl: repo.cloneUrl, sha: 'a'.repeat(40) },
      project: { name: 'net', dir: 'net', workspace: 'default' },
      known: [],
      label: 'metrics',
    } as unknown as RunInput;
    // The checkout asks for a clone token first (cached for the retries).
    net.nock()(GHE).post('/app/installations/77/access_tokens').reply(201, { token: 'ghs_clone', expires_at: new Date(Date.now() + 3600_000).toISOString() });
    const run = env.client.workflow.execute(PROJECT_RUN_WORKFLOW_TYPE, { workflowId: `run:metrics-${Date.now()}`, taskQueue: workerQueue, args: [input] });
    await expect(run).rejects.toThrow(WorkflowFailedError);
    const text = await scrape(ops.port);
    expect(value(text, 'terrapin_runs_total', { kind: 'plan', outcome: 'error' })).toBe(1);
    expect(value(text, 'terrapin_run_duration_seconds_count', { kind: 'plan', outcome: 'error' })).toBe(1);
    expect(value(text, 'terrapin_activities_total', { activity: 'checkout', outcome: 'error' })).toBe(3);
    expect(value(text, 'terrapin_activity_retries_total', { activity: 'checkout' })).toBe(2);
  });

  it('/readyz fails once the worker stopped, and on both listeners once Temporal is stopped; /healthz still answers', async () => {
    await worker();
    const workerReady = await fetch(`http://127.0.0.1:${ops.port}/readyz`);
    expect(workerReady.status).toBe(503);
    expect(await workerReady.text()).toMatch(/worker is not polling/);
    expect(value(await scrape(ops.port), 'terrapin_worker_polling', {})).toBe(0);

    await env.teardown();
    temporalStopped = true;
    for (const port of [web.port, ops.port]) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toMatch(/Temporal does not answer/);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      // Metrics still answer without Temporal; what only Temporal knows has no sample (not a 0).
      const text = await scrape(port);
      expect(value(text, 'terrapin_process_resident_memory_bytes', {})).toBeGreaterThan(0);
      for (const name of ['terrapin_workflows_running', 'terrapin_locks_held', 'terrapin_deploy_queue_depth', 'terrapin_lock_queue_depth', 'terrapin_approvals_waiting']) {
        expect(samples(text).filter((s) => s.name === name)).toEqual([]);
      }
    }
  });
});
