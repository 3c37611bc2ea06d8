// Crash and resume: Terrapin's worker runs as a separate process and is killed with SIGKILL at each step
// boundary of a PR run, or in the middle of a step once the step has said it started (the fixture writes a
// marker file: a prePlan hook inside the plan activity, the provisioner inside terraform apply); a fresh
// worker then takes over. Every run must finish, every apply must take effect
// at most once (exactly once where it succeeded), and no comment or check run may be posted twice.
// GitHub is the loopback stand-in (workers in other processes cannot share nock). The scenarios run at
// once, each on its own task queue: a crashed worker's activity is only retried once its timeout passes.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { WORKFLOWS_PATH } from '../../app/worker.ts';
import { startGithubStandin, type GithubStandin } from '../../scripts/github-standin.ts';
import { prWorkflowId, type PrStatus } from '../../shared/contracts.ts';
import { quietBundlerLogger } from '../helpers/bundler-logger.ts';
import { createFixtureRepo, FAIL_ON_APPLY_MESSAGE, readState, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { ROUTE } from '../helpers/standin-routes.ts';

const CRASH_WORKER = fileURLToPath(new URL('../helpers/crash-worker.ts', import.meta.url));
const BOT = 'terrapin[bot]';

let h: Harness;
let standin: GithubStandin;
let tmp: string;
let bundlePath: string;
const repos: FixtureRepo[] = [];
const workers: ChildProcess[] = [];

beforeAll(async () => {
  h = await startHarness();
  standin = await startGithubStandin({ botLogin: BOT });
  standin.setPermission('bob', 'write');
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-crash-'));
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
});

interface Worker {
  process: ChildProcess;
  /** Resolves with the signal that ended the process. */
  ended: Promise<NodeJS.Signals | null>;
}

async function startWorker(taskQueue: string, crashAt?: string): Promise<Worker> {
  const settings = {
    address: h.env.address,
    taskQueue,
    workflowBundlePath: bundlePath,
    config: { ...h.config, github: { ...h.config.github, baseUrl: standin.baseUrl } },
  };
  const child = spawn(process.execPath, [CRASH_WORKER], {
    env: { ...process.env, CRASH_WORKER_SETTINGS: JSON.stringify(settings), ...(crashAt ? { CRASH_AT: crashAt } : {}) },
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
  return { process: child, ended };
}

interface PrOptions {
  failApply?: boolean;
  /**
   * Which step writes `started` as it begins, and then keeps running for a while: the plan, the apply, or
   * (preApply) a hook inside the apply activity before terraform runs.
   */
  marker?: Marker;
  /** A second resource, created after the first, whose provisioner writes `started`, waits, and fails. */
  partial?: boolean;
}

type Marker = 'plan' | 'apply' | 'preApply';

/** One scenario's PR: a resource whose creation appends to a counter file (one line per apply that ran). */
async function openPr(name: string, number: number, opts: PrOptions = {}): Promise<{ pr: TestPr; counter: string; stateFile: string; started: string }> {
  const counter = join(tmp, `${name}.count`);
  const stateFile = join(tmp, `${name}.tfstate`);
  const started = join(tmp, `${name}.started`);
  const backend = `terraform {\n  backend "local" {\n    path = "${stateFile}"\n  }\n}\n`;
  // A hook runs inside the plan activity, before terraform: the plan is under way once it has written the marker.
  const hook = opts.marker === 'plan' ? 'prePlan' : opts.marker === 'preApply' ? 'preApply' : undefined;
  const config: Record<string, string> = hook ? { '.terrapin.yml': `projects:\n  - name: app\n    dir: .\n    hooks:\n      ${hook}:\n        - "touch ${started}; sleep 3"\n` } : {};
  const repo = await createFixtureRepo({ 'main.tf': `${backend}resource "terraform_data" "base" {\n  input = "base"\n}\n`, ...config });
  repos.push(repo);
  const baseSha = await repo.head();
  // The provisioner runs inside terraform apply: the apply is under way once it has written the marker.
  const command = `${opts.marker === 'apply' ? `touch ${started}; sleep 4; ` : ''}echo applied >> ${counter}`;
  const fail = opts.failApply ? `  provisioner "local-exec" {\n    command = "echo '${FAIL_ON_APPLY_MESSAGE}' >&2; exit 1"\n  }\n` : '';
  // Partial: the server is created (counted), then the second resource's provisioner fails after the marker.
  const second = opts.partial ? `resource "terraform_data" "second" {\n  depends_on = [terraform_data.server]\n  provisioner "local-exec" {\n    command = "touch ${started}; sleep 4; exit 1"\n  }\n}\n` : '';
  const server = `resource "terraform_data" "server" {\n  input = "small"\n  provisioner "local-exec" {\n    command = "${command}"\n  }\n${fail}}\n${second}`;
  const headSha = await repo.commit({ 'main.tf': `${backend}resource "terraform_data" "base" {\n  input = "base"\n}\n${server}` }, { branch: 'change' });
  const pr: TestPr = { owner: 'acme', repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'change', baseRef: 'main', baseSha, author: 'alice' };
  standin.setPullRequest('acme', name, number, { number, state: 'open', head: { sha: headSha }, user: { login: 'alice' } });
  return { pr, counter, stateFile, started };
}

/** Polls for a file with a deadline: a step's marker that it has started. */
async function waitForFile(path: string, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${path})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function status(pr: TestPr): Promise<PrStatus | undefined> {
  return h.env.client.workflow.getHandle(prWorkflowId(pr.owner, pr.repo, pr.number)).query<PrStatus>('prState').catch(() => undefined);
}

async function waitFor(pr: TestPr, ok: (s: PrStatus) => boolean, what: string, timeoutMs = 150_000): Promise<PrStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: PrStatus | undefined;
  while (Date.now() < deadline) {
    last = await status(pr);
    if (last && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${pr.repo}: timed out waiting for ${what}; last ${JSON.stringify(last)}`);
}


/**
 * Every call a scenario's PR may make. What changes GitHub is exact: one plan and one apply check run, one
 * comment per marker, one 👀 per command. A crash may land before or after a call reached GitHub, so how
 * often a retried step reads (to find what it already did) or re-sends an update is not fixed: those are
 * bounded below only.
 */
function expectCalls(pr: TestPr, commands: { approve: number; marker: number; markerDelivery: string }): void {
  const repo = `/repos/acme/${pr.repo}`;
  const has = (text: string) => (b: { body?: string }) => (b.body ?? '').includes(text);
  standin.expectExactly([
    { route: ROUTE.createCheck, path: `${repo}/check-runs`, body: (b) => b.name === 'terrapin/plan' && b.head_sha === pr.headSha, label: `${pr.repo}: plan check created` },
    { route: ROUTE.createCheck, path: `${repo}/check-runs`, body: (b) => b.name === 'terrapin/apply' && b.head_sha === pr.headSha, label: `${pr.repo}: apply check created` },
    { route: ROUTE.updateCheck, path: new RegExp(`^${repo}/check-runs/\\d+$`), times: { min: 3 }, label: `${pr.repo}: check runs updated (plan done, applying, apply done)` },
    { route: ROUTE.listChecks, path: new RegExp(`^${repo}/commits/${pr.headSha}/check-runs$`), times: { min: 0 }, label: `${pr.repo}: check runs looked up` },
    { route: ROUTE.comment, path: `${repo}/issues/${pr.number}/comments`, body: has('<!-- terrapin:plan-1:0 -->'), label: `${pr.repo}: plan comment` },
    { route: ROUTE.comment, path: `${repo}/issues/${pr.number}/comments`, body: has('<!-- terrapin:apply-1:0 -->'), label: `${pr.repo}: apply comment` },
    { route: ROUTE.comment, path: `${repo}/issues/${pr.number}/comments`, body: has(`<!-- terrapin:reply-${commands.markerDelivery}:0 -->`), label: `${pr.repo}: reply to the closing command` },
    { route: ROUTE.listComments, path: `${repo}/issues/${pr.number}/comments`, times: { min: 0 }, label: `${pr.repo}: comments looked up` },
    { route: ROUTE.editComment, path: new RegExp(`^${repo}/issues/comments/\\d+$`), times: { min: 0 }, label: `${pr.repo}: comment brought up to date` },
    { route: ROUTE.reaction, path: `${repo}/issues/comments/${commands.approve}/reactions`, label: `${pr.repo}: 👀 on /approve` },
    { route: ROUTE.reaction, path: `${repo}/issues/comments/${commands.marker}/reactions`, label: `${pr.repo}: 👀 on the closing command` },
    { route: ROUTE.permission, path: `${repo}/collaborators/bob/permission`, times: 2, label: `${pr.repo}: bob's permission, per command` },
    { route: ROUTE.commits, path: `${repo}/pulls/${pr.number}/commits`, label: `${pr.repo}: the PR's commits, for the approval` },
  ]);
}

async function command(queue: string, pr: TestPr, body: string, deliveryId?: string): Promise<number> {
  const c = standin.addIssueComment('acme', pr.repo, pr.number, { body, login: 'bob' });
  await h.receiveOn(queue, 'issue_comment', issueCommentEvent(pr, body, { login: 'bob', commentId: c.id }), deliveryId);
  return c.id;
}

const applies = async (counter: string) => (existsSync(counter) ? (await readFile(counter, 'utf8')).trim().split('\n').length : 0);

/**
 * What the PR shows: the bot's comments by their hidden marker, and its check runs; each must be unique.
 * The reply to the closing marker command (see `run`) is counted apart.
 */
function surfaces(pr: TestPr, markerDelivery: string): { markers: string[]; checks: string[]; markerReplies: number } {
  const all = standin.comments('acme', pr.repo, pr.number).filter((c) => c.user.login === BOT).map((c) => /<!-- terrapin:(\S+) -->/.exec(c.body)?.[1] ?? '?');
  const markerReply = `reply-${markerDelivery}:0`;
  const checks = standin.checkRuns('acme', pr.repo).map((c) => `${c.name}:${c.conclusion}`);
  return { markers: all.filter((m) => m !== markerReply).sort(), checks: checks.sort(), markerReplies: all.filter((m) => m === markerReply).length };
}

type Phase = 'plan' | 'idle' | 'apply';

interface Outcome {
  name: string;
  crashAt: string;
  crashed: boolean;
  status?: string;
  applies: number;
  surfaces: { markers: string[]; checks: string[]; markerReplies: number };
}

/**
 * Runs a PR to its end with the first worker crashing at `crashAt` (in the given phase), then a fresh one.
 * `crashAt` is the crash worker's `<activity>:<before|after>[@n]`, or `started:<plan|apply>`: the test kills
 * the worker once that step has written its marker file.
 */
async function run(name: string, number: number, crashAt: string, phase: Phase, opts: { failApply?: boolean; partial?: boolean } = {}): Promise<Outcome> {
  const queue = `crash-${name}-${randomUUID()}`;
  const atMarker = /^started:(plan|apply|preApply)$/.exec(crashAt)?.[1] as Marker | undefined;
  const { pr, counter, started } = await openPr(name, number, { ...opts, marker: opts.partial ? undefined : atMarker });
  expect(atMarker === undefined || (atMarker === 'preApply' ? 'apply' : atMarker) === phase, `${name}: a ${atMarker} marker in the ${phase} phase`).toBe(true);
  let worker = await startWorker(queue, phase === 'idle' || atMarker ? undefined : crashAt);
  await h.receiveOn(queue, 'pull_request', pullRequestEvent('opened', pr));
  let crashed = false;
  const takeOver = async () => {
    if (atMarker) {
      await waitForFile(started, `${name}: the ${atMarker} to start`);
      worker.process.kill('SIGKILL');
    }
    crashed = (await worker.ended) === 'SIGKILL';
    worker = await startWorker(queue);
  };
  if (phase === 'plan') await takeOver();
  await waitFor(pr, (s) => s.plan?.status === 'ready' && !s.job, 'the plan');
  if (phase === 'idle') {
    worker.process.kill('SIGKILL');
    await takeOver();
  }
  const approval = await command(queue, pr, '/approve');
  if (phase === 'apply') await takeOver();
  const end = await waitFor(pr, (s) => !s.job && ['applied', 'unknown', 'apply-failed'].includes(s.plan?.status ?? ''), 'the apply to end');
  // A later command, once handled (and the workflow idle), proves every report of the run has landed: what
  // is not on the PR by then never will be.
  const markerDelivery = `marker-${name}-${randomUUID()}`;
  const marker = await command(queue, pr, '/help', markerDelivery);
  await h.waitHandled('acme', pr.repo, pr.number, markerDelivery, 120_000);
  expectCalls(pr, { approve: approval, marker, markerDelivery });
  worker.process.kill('SIGTERM');
  return { name, crashAt, crashed, status: end.plan?.status, applies: await applies(counter), surfaces: surfaces(pr, markerDelivery) };
}

test('kill -9 at every step boundary: runs finish, applies happen at most once, nothing is posted twice', async () => {
  // From here on every call must be one of those `run` lists for its PR.
  standin.expectExactly([]);
  const outcomes = await Promise.all([
    run('during-clone', 1, 'selectProjects:before', 'plan'),
    run('during-plan', 2, 'started:plan', 'plan'),
    run('after-plan', 3, 'plan:after', 'plan'),
    run('after-plan-comment', 4, 'postComment:after', 'plan'),
    run('waiting', 5, '', 'idle'),
    run('after-apply-check', 6, 'upsertCheckRun:after@4', 'apply'),
    run('during-apply', 7, 'started:apply', 'apply'),
    run('after-apply', 8, 'apply:after', 'apply'),
    // The compensation's apply (a tainted resource's destroy) takes well under a second: die as it starts.
    run('during-compensation', 9, 'apply:before@2', 'apply', { failApply: true }),
    // Inside the apply activity before terraform ran (a preApply hook): nothing changed, so the fresh plan is applied.
    run('before-terraform', 10, 'started:preApply', 'apply'),
    // One resource created, the other's provisioner still running when the worker dies, then failing.
    run('partial-apply', 11, 'started:apply', 'apply', { partial: true }),
  ]);
  const report = standin.verifyCalls();
  const retried = report.counts.filter((c) => /looked up|brought up to date/.test(c.label)).reduce((n, c) => n + c.count, 0);
  const updates = report.counts.filter((c) => /check runs updated/.test(c.label)).reduce((n, c) => n + c.count, 0);
  console.log(`crash suite calls: ${standin.calls.length} GitHub calls, each expected; ${retried} lookups by retried steps, ${updates} check-run updates (3 per PR without a retry)`);
  const table = outcomes.map((o) => `${o.name.padEnd(20)} ${o.crashAt.padEnd(24)} crashed=${o.crashed} status=${o.status} applies=${o.applies} comments=${o.surfaces.markers.join(',')}`);
  console.log(`crash suite:\n${table.join('\n')}`);
  for (const o of outcomes) {
    expect(o.crashed, o.name).toBe(true);
    expect(new Set(o.surfaces.markers).size, `${o.name}: a comment posted twice`).toBe(o.surfaces.markers.length);
    expect(o.surfaces.markerReplies, `${o.name}: the closing command's reply`).toBe(1);
    expect(o.applies, `${o.name}: applied more than once`).toBeLessThanOrEqual(1);
  }
  // Every call each PR made was one it may make, as often as it may.
  standin.assertExactly();
  const byName = Object.fromEntries(outcomes.map((o) => [o.name, o]));
  // A crash anywhere but inside terraform apply: the run completes as if nothing happened.
  for (const name of ['during-clone', 'during-plan', 'after-plan', 'after-plan-comment', 'waiting', 'after-apply-check']) {
    expect(byName[name], name).toMatchObject({ status: 'applied', applies: 1, surfaces: { markers: ['apply-1:0', 'plan-1:0'], checks: ['terrapin/apply:success', 'terrapin/plan:success'] } });
  }
  const applyComment = (name: string, number: number) => standin.comments('acme', name, number).find((c) => c.body.includes('terrapin:apply-1:0'))!.body;
  // Inside terraform apply, whose orphaned terraform finished (or which ended just as the worker died): a
  // plan after the restart finds nothing left to do, so the apply is reported as done, verified; never re-run.
  for (const [name, number] of [['during-apply', 7], ['after-apply', 8]] as const) {
    expect(byName[name], name).toMatchObject({ status: 'applied', applies: 1, surfaces: { markers: ['apply-1:0', 'plan-1:0'], checks: ['terrapin/apply:success', 'terrapin/plan:success'] } });
    const body = applyComment(name, number);
    expect(body).toContain('**Applied (verified after a worker restart)**');
    expect(body).toContain('Plan after the restart');
    expect(body).not.toContain('needs attention');
    const state = await readState(join(tmp, `${name}.tfstate`));
    expect(state.resources.map((r) => r.name).sort(), name).toEqual(['base', 'server']);
  }
  // Before terraform ran: the state was untouched and the same actions pending, so the fresh plan was
  // applied once under the same approval.
  expect(byName['before-terraform']).toMatchObject({ status: 'applied', applies: 1, surfaces: { markers: ['apply-1:0', 'plan-1:0'], checks: ['terrapin/apply:success', 'terrapin/plan:success'] } });
  expect(applyComment('before-terraform', 10)).toContain('**Applied**');
  expect(applyComment('before-terraform', 10)).not.toContain('verified after a worker restart');
  expect((await readState(join(tmp, 'before-terraform.tfstate'))).resources.map((r) => r.name).sort()).toEqual(['base', 'server']);
  // Partly applied: neither done nor untouched, so a person looks, shown what is still pending.
  expect(byName['partial-apply']).toMatchObject({ status: 'unknown', applies: 1, surfaces: { markers: ['apply-1:0', 'plan-1:0'], checks: ['terrapin/apply:failure', 'terrapin/plan:success'] } });
  const partial = applyComment('partial-apply', 11);
  expect(partial).toContain('needs attention');
  expect(partial).toContain('Do not re-run the apply blindly');
  expect(partial).toContain('Plan after the restart (what is still pending)');
  expect(partial).toMatch(/terraform_data\.second[^\n]*(tainted|replaced)/);
  expect(partial).toContain('the state changed since the apply began');
  expect(byName['during-compensation']).toMatchObject({ status: 'apply-failed', surfaces: { markers: ['apply-1:0', 'plan-1:0'] } });
  expect(standin.comments('acme', 'during-compensation', 9).find((c) => c.body.includes('terrapin:apply-1:0'))!.body).toContain('rollback failed');
  const state = await readState(join(tmp, 'waiting.tfstate'));
  expect(state.resources.map((r) => r.name).sort()).toEqual(['base', 'server']);
}, 600_000);
