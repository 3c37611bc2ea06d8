// A PR waiting for approval survives a restart of Temporal itself: the embedded dev server (SQLite under
// the data dir) and the worker are stopped and started again, and the approval then applies the plan.
// Everything is the production wiring: connectTemporal, runTerrapinWorker, createApp.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import nock from 'nock';
import pino from 'pino';
import { Probot, ProbotOctokit } from 'probot';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createApp } from '../../app/index.ts';
import { connectTemporal, type TemporalHandle } from '../../app/temporal.ts';
import { runTerrapinWorker } from '../../app/worker.ts';
import { CHECK_APPLY, CHECK_PLAN } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { freePort } from '../helpers/free-port.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { temporalCliPath } from '../helpers/temporal-cli.ts';

const logger = pino({ level: 'silent' });
let dataDir: string;
let stateDir: string;
let repo: FixtureRepo;
let running: { temporal: TemporalHandle; stopWorker: () => Promise<void>; probot: Probot } | undefined;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'terrapin-restart-'));
  stateDir = await mkdtemp(join(tmpdir(), 'terrapin-restart-state-'));
});
afterAll(async () => {
  await stop();
  nock.cleanAll();
  nock.enableNetConnect();
  await repo?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
  await rm(stateDir, { recursive: true, force: true });
});

async function start(port: number): Promise<Probot> {
  const loaded = loadConfig({
    APP_ID: '1',
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET: 'secret',
    TERRAPIN_DATA_DIR: dataDir,
    TEMPORAL_TASK_QUEUE: 'restart-test',
    TEMPORAL_CLI_PATH: temporalCliPath(),
  });
  // The state file lives outside the data dir and every checkout, in a dir the sandbox is told about.
  const config = { ...loaded, operatorPolicy: { ...loaded.operatorPolicy, runner: { sandbox: 'auto' as const, paths: [{ path: stateDir, writable: true }] } } };
  // nock's interceptors break grpc-js connection set-up: connect with them off.
  nock.restore();
  const temporal = await connectTemporal(config.temporal, { dataDir, logger, port, uiPort: await freePort() });
  nock.activate();
  nock.disableNetConnect();
  nock.enableNetConnect((host) => host.startsWith('127.0.0.1') || host.startsWith('localhost'));
  const stopWorker = await runTerrapinWorker({ config, logger, temporal });
  const probot = new Probot({ appId: 1, privateKey, secret: 'secret', log: logger, Octokit: ProbotOctokit.defaults({ retry: { enabled: false }, throttle: { enabled: false } }) });
  await probot.load(createApp({ client: temporal.client, taskQueue: config.temporal.taskQueue, logger }));
  running = { temporal, stopWorker, probot };
  return probot;
}

async function stop(): Promise<void> {
  if (!running) return;
  await running.stopWorker();
  await running.temporal.close();
  running = undefined;
}

test('an approval after Temporal and the worker restarted on the same SQLite file still applies', { timeout: 180_000 }, async () => {
  const stateFile = join(stateDir, 'infra.tfstate');
  repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: {} }) });
  const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: { survivor: { input: 'after-restart' } } }) }, { branch: 'feature' });
  const pr: TestPr = { owner: 'acme', repo: 'restart', number: 1, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head(), author: 'alice' };
  const gh = new GithubMock('acme', 'restart');
  const port = await freePort();

  let probot = await start(port);
  gh.createCheckRun(CHECK_PLAN, 'in_progress').comment(1, /Plan: 1 to add/).updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' }).createCheckRun(CHECK_APPLY, 'queued');
  await probot.receive({ id: randomUUID(), name: 'pull_request', payload: pullRequestEvent('opened', pr) } as Parameters<Probot['receive']>[0]);
  await gh.settled();

  await stop();
  // The server is really gone: nothing answers on its port.
  expect((await execa(temporalCliPath()!, ['workflow', 'list', '--address', `127.0.0.1:${port}`], { reject: false, timeout: 10_000 })).exitCode).not.toBe(0);

  probot = await start(port);
  gh.reaction(501).permission('bob', 'write').prCommits(1).updateCheckRun(CHECK_APPLY, 'in_progress').comment(1, /Applied/).updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
  await probot.receive({ id: randomUUID(), name: 'issue_comment', payload: issueCommentEvent(pr, '/approve', { login: 'bob', commentId: 501 }) } as Parameters<Probot['receive']>[0]);
  await gh.settled();
  const state = JSON.parse(await readFile(stateFile, 'utf8'));
  expect(state.resources.map((r: { name: string }) => r.name)).toEqual(['survivor']);
  gh.assertNoUnexpected();
});
