// Stateless workers: two worker processes on one task queue, each with its own data dir and no shared disk,
// plans in the PostgreSQL artifact store (127.0.0.1:5432, database `test`, a table of this run's own).
// The worker that planned is killed and its data dir deleted; the approval is applied by the other worker,
// exactly once, with the approved plan's hash. A rolling restart of every worker (each coming back with an
// empty data dir) while ten PRs wait for approval loses none of them.
// GitHub is the loopback stand-in (workers in other processes cannot share nock).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { WORKFLOWS_PATH } from '../../app/worker.ts';
import { startGithubStandin, type GithubStandin } from '../../scripts/github-standin.ts';
import { prWorkflowId, type PrStatus } from '../../shared/contracts.ts';
import { quietBundlerLogger } from '../helpers/bundler-logger.ts';
import { createFixtureRepo, readState, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const CRASH_WORKER = fileURLToPath(new URL('../helpers/crash-worker.ts', import.meta.url));
const PG_URL = process.env.TERRAPIN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BOT = 'terrapin[bot]';

let h: Harness;
let standin: GithubStandin;
let tmp: string;
let bundlePath: string;
let admin: pg.Client;
const table = `artifacts_stateless_${randomBytes(6).toString('hex')}`;
const repos: FixtureRepo[] = [];
const workers: ChildProcess[] = [];

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  h = await startHarness();
  standin = await startGithubStandin({ botLogin: BOT });
  standin.setPermission('bob', 'write');
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-stateless-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
  bundlePath = join(tmp, 'workflows.js');
  await writeFile(bundlePath, (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger })).code);
});
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await h?.teardown();
  await standin?.close();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
  await admin?.query(`drop table if exists ${table}_paths, ${table}`);
  await admin?.end();
});

interface Worker {
  process: ChildProcess;
  dataDir: string;
  ended: Promise<NodeJS.Signals | null>;
}

/** A worker process with a data dir of its own (created empty) and the shared PostgreSQL artifact store. */
async function startWorker(taskQueue: string, dataDir: string): Promise<Worker> {
  const settings = {
    address: h.env.address,
    taskQueue,
    workflowBundlePath: bundlePath,
    config: { ...h.config, dataDir, artifacts: { kind: 'postgres', url: PG_URL, table }, github: { ...h.config.github, baseUrl: standin.baseUrl } },
  };
  const child = spawn(process.execPath, [CRASH_WORKER], {
    env: { ...process.env, CRASH_WORKER_SETTINGS: JSON.stringify(settings) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
  const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    void ended.then(() => reject(new Error(`worker exited before it was ready: ${stderr.slice(-2000)}`)));
  });
  return { process: child, dataDir, ended };
}

/** A PR adding a resource whose creation appends a line to a counter file (one line per apply that ran). */
async function openPr(name: string, number: number): Promise<{ pr: TestPr; counter: string; stateFile: string }> {
  const counter = join(tmp, `${name}.count`);
  const stateFile = join(tmp, `${name}.tfstate`);
  const backend = `terraform {\n  backend "local" {\n    path = "${stateFile}"\n  }\n}\n`;
  const repo = await createFixtureRepo({ 'main.tf': `${backend}resource "terraform_data" "base" {\n  input = "base"\n}\n` });
  repos.push(repo);
  const baseSha = await repo.head();
  const server = `resource "terraform_data" "server" {\n  input = "small"\n  provisioner "local-exec" {\n    command = "echo applied >> ${counter}"\n  }\n}\n`;
  const headSha = await repo.commit({ 'main.tf': `${backend}resource "terraform_data" "base" {\n  input = "base"\n}\n${server}` }, { branch: 'change' });
  const pr: TestPr = { owner: 'acme', repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'change', baseRef: 'main', baseSha, author: 'alice' };
  standin.setPullRequest('acme', name, number, { number, state: 'open', head: { sha: headSha }, user: { login: 'alice' } });
  return { pr, counter, stateFile };
}

const status = (pr: TestPr): Promise<PrStatus | undefined> =>
  h.env.client.workflow.getHandle(prWorkflowId(pr.owner, pr.repo, pr.number)).query<PrStatus>('prState').catch(() => undefined);

async function waitFor(pr: TestPr, ok: (s: PrStatus) => boolean, what: string, timeoutMs = 240_000): Promise<PrStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: PrStatus | undefined;
  while (Date.now() < deadline) {
    last = await status(pr);
    if (last && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${pr.repo}: timed out waiting for ${what}; last ${JSON.stringify(last)}`);
}

async function approve(queue: string, pr: TestPr): Promise<void> {
  const c = standin.addIssueComment('acme', pr.repo, pr.number, { body: '/approve', login: 'bob' });
  await h.receiveOn(queue, 'issue_comment', issueCommentEvent(pr, '/approve', { login: 'bob', commentId: c.id }));
}

const applies = async (counter: string) => (existsSync(counter) ? (await readFile(counter, 'utf8')).trim().split('\n').length : 0);

/** Every file of that name under a dir (a worker's data dir). */
async function filesNamed(dir: string, name: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name === name).map((e) => join(e.parentPath, e.name));
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

const planReady = (s: PrStatus) => s.plan?.status === 'ready' && !s.job;
const applied = (s: PrStatus) => !s.job && ['applied', 'unknown', 'apply-failed', 'stale'].includes(s.plan?.status ?? '');

test('the worker that planned dies and loses its disk: the other worker applies the approved plan, once', async () => {
  const queue = `stateless-${randomUUID()}`;
  const { pr, counter, stateFile } = await openPr('handover', 1);
  const planner = await startWorker(queue, join(tmp, 'data-planner'));
  await h.receiveOn(queue, 'pull_request', pullRequestEvent('opened', pr));
  const ready = await waitFor(pr, planReady, 'the plan');
  const approvedHash = ready.plan!.planSha256;
  // The planner made the plan, and stored it.
  const [plannedFile] = await filesNamed(planner.dataDir, 'plan.tfplan');
  expect(plannedFile && (await sha256(plannedFile))).toBe(approvedHash);
  expect((await admin.query(`select count(*) as n from ${table} where sha256 = $1`, [approvedHash])).rows[0].n).toBe('1');

  // A second worker joins the queue; the planner dies and its disk goes with it.
  const other = await startWorker(queue, join(tmp, 'data-other'));
  planner.process.kill('SIGKILL');
  expect(await planner.ended).toBe('SIGKILL');
  await rm(planner.dataDir, { recursive: true, force: true });

  await approve(queue, pr);
  const end = await waitFor(pr, applied, 'the apply');
  expect(end.plan?.status).toBe('applied');
  expect(await applies(counter)).toBe(1);
  expect((await readState(stateFile)).resources.map((r) => r.name).sort()).toEqual(['base', 'server']);
  // The other worker re-created the work dir and applied exactly the approved plan, fetched by its hash.
  expect(existsSync(planner.dataDir)).toBe(false);
  const appliedPlans = await filesNamed(other.dataDir, 'plan.tfplan');
  expect(appliedPlans.length).toBe(1);
  expect(await sha256(appliedPlans[0]!)).toBe(approvedHash);
  expect((await filesNamed(other.dataDir, 'apply.log')).length).toBe(1);
  other.process.kill('SIGTERM');
  await other.ended;
}, 400_000);

test('a rolling restart of every worker while ten PRs wait for approval loses none of them', async () => {
  const queue = `stateless-roll-${randomUUID()}`;
  const prs = await Promise.all(Array.from({ length: 10 }, (_, i) => openPr(`rolling-${i}`, 100 + i)));
  let a = await startWorker(queue, join(tmp, 'roll-a-1'));
  let b = await startWorker(queue, join(tmp, 'roll-b-1'));
  for (const { pr } of prs) await h.receiveOn(queue, 'pull_request', pullRequestEvent('opened', pr));
  const hashes = await Promise.all(prs.map(async ({ pr }) => (await waitFor(pr, planReady, 'the plan')).plan!.planSha256));

  // One worker at a time: stopped, its disk gone, replaced by a fresh one with an empty data dir.
  a.process.kill('SIGTERM');
  await a.ended;
  await rm(a.dataDir, { recursive: true, force: true });
  a = await startWorker(queue, join(tmp, 'roll-a-2'));
  b.process.kill('SIGTERM');
  await b.ended;
  await rm(b.dataDir, { recursive: true, force: true });
  b = await startWorker(queue, join(tmp, 'roll-b-2'));

  for (const { pr } of prs) await approve(queue, pr);
  const ends = await Promise.all(prs.map(({ pr }) => waitFor(pr, applied, 'the apply')));
  expect(ends.map((s) => s.plan?.status)).toEqual(prs.map(() => 'applied'));
  // The approved plans, unchanged by the restarts: the hashes the PRs still carry.
  expect(ends.map((s) => s.plan?.planSha256)).toEqual(hashes);
  expect(await Promise.all(prs.map(({ counter }) => applies(counter)))).toEqual(prs.map(() => 1));
  const appliedHashes = await Promise.all([...(await filesNamed(a.dataDir, 'plan.tfplan')), ...(await filesNamed(b.dataDir, 'plan.tfplan'))].map(sha256));
  expect(appliedHashes.sort()).toEqual([...hashes].sort());
  for (const w of [a, b]) w.process.kill('SIGTERM');
  await Promise.all([a.ended, b.ended]);
}, 600_000);
