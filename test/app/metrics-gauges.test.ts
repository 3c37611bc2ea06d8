// The gauges an operator watches queues by, computed from a real Temporal on scrape: a PR waiting for approval
// (real worker, git and terraform; GitHub mocked at HTTP) counts until it is approved and applied, and its
// project lock counts as held until the PR closes; revisions waiting behind a deploy queue's turn and a PR in
// line for a lock count as queued, as the queue workflows' own state says.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gauge } from 'prom-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { registry, watchWorkflows } from '../../app/metrics.ts';
import {
  CHECK_APPLY,
  CHECK_PLAN,
  DEPLOY_WORKFLOW_TYPE,
  LOCK_WORKFLOW_TYPE,
  deploySignal,
  deployStateQuery,
  deployWorkflowId,
  lockQueueQuery,
  lockRequestSignal,
  lockWorkflowId,
  prWorkflowId,
  type DeployInput,
  type DeployRevision,
  type LockInput,
  type RepoRef,
} from '../../shared/contracts.ts';
import { SEARCH_ATTRIBUTES } from '../../shared/records.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const OWNER = 'acme';
const AUTHOR = 'alice';
const WRITER = 'bob';

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-gauges-test-'));
  h.allowRunnerPath(tmp);
  // Uncached: each read below is a fresh count (the server caches 15 s).
  watchWorkflows(h.env.client, { cacheMs: 0 });
});

afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A gauge's samples as a scrape computes them (its collect asks Temporal). */
async function gauge(name: string): Promise<Array<{ value: number; labels: Partial<Record<string, string | number>> }>> {
  const metric = registry.getSingleMetric(name) as Gauge | undefined;
  if (!metric) throw new Error(`${name} is not registered`);
  return (await metric.get()).values;
}
const valueOf = async (name: string, labels: Record<string, string> = {}) =>
  (await gauge(name)).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
/** Visibility is eventually consistent: a count follows a workflow's change within a moment. */
const settlesAt = (name: string, labels: Record<string, string>, expected: number) =>
  expect.poll(() => valueOf(name, labels), { timeout: 20_000, interval: 250 }).toBe(expected);

/** A workflow that runs and answers no task (no worker polls its queue): somewhere for signals to go. */
async function bystander(workflowId: string): Promise<void> {
  await h.env.client.workflow.start('bystanderWorkflow', { workflowId, taskQueue: `${h.taskQueue}-nobody`, args: [] });
}

describe('gauges from Temporal', () => {
  test('a PR waiting for approval counts until approved and applied; its project lock is held until it closes', async () => {
    const stateFile = join(tmp, 'waiting.tfstate');
    const repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }) });
    repos.push(repo);
    const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' }, b: { input: 'new' } } }) }, { branch: 'feature' });
    const pr: TestPr = { owner: OWNER, repo: 'waiting', number: 1, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head('main'), author: AUTHOR };
    const gh = new GithubMock(OWNER, 'waiting');
    const handle = h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'waiting', 1));

    expect(await valueOf('terrapin_approvals_waiting', { workflow: 'pr' })).toBe(0);
    expect(await valueOf('terrapin_locks_held')).toBe(0);
    gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(1, (b) => b.includes('**Terrapin plan**') && b.includes('Plan: 2 to add'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
      .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
    await h.receive('pull_request', pullRequestEvent('opened', pr));
    await gh.settled(30_000);
    await h.waitFor(OWNER, 'waiting', 1, (s) => s.plan?.status === 'ready' && !s.job);

    await settlesAt('terrapin_approvals_waiting', { workflow: 'pr' }, 1);
    expect((await handle.describe()).typedSearchAttributes.get(SEARCH_ATTRIBUTES.waiting)).toBe('approval');
    expect(await valueOf('terrapin_approvals_waiting', { workflow: 'deploy' })).toBe(0);
    expect(await valueOf('terrapin_approvals_waiting', { workflow: 'operator' })).toBe(0);
    // lock: onPlan (the default): the plan took the project's lock.
    expect(await valueOf('terrapin_locks_held')).toBe(1);

    gh.reaction(7001)
      .permission(WRITER, 'write')
      .prCommits(1)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(1, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await h.receive('issue_comment', issueCommentEvent(pr, '/approve', { login: WRITER, commentId: 7001 }));
    await gh.settled(60_000);
    await h.waitFor(OWNER, 'waiting', 1, (s) => s.plan?.status === 'applied' && !s.job);

    // Applied, the PR still open: it waits for nobody.
    await settlesAt('terrapin_approvals_waiting', { workflow: 'pr' }, 0);
    const described = await handle.describe();
    expect(described.status.name).toBe('RUNNING');
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.waiting)).toBeUndefined();
    expect(await valueOf('terrapin_locks_held')).toBe(1);

    // Closed: the lock is given back, and a free lock's workflow ends.
    await h.receive('pull_request', pullRequestEvent('closed', pr));
    await handle.result();
    await settlesAt('terrapin_locks_held', {}, 0);
    gh.assertNoUnexpected();
  });

  test('revisions waiting behind a deploy queue\'s turn are its depth; the one deploying is not', async () => {
    const repo: RepoRef = { owner: OWNER, name: 'queued', installationId: 42, cloneUrl: 'https://github.com/acme/queued.git' };
    const workflowId = deployWorkflowId(repo, 'app');
    const queue = h.env.client.workflow.getHandle(workflowId);
    const holder = `${workflowId}-operator`;
    await bystander(holder);
    expect(await valueOf('terrapin_deploy_queue_depth')).toBe(0);

    // An operator run's turn (as operator-run.ts asks for one): nothing of the queue runs until it is given back.
    await h.env.client.workflow.signalWithStart(DEPLOY_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: h.taskQueue,
      args: [{ repo, project: 'app' } satisfies DeployInput],
      signal: deploySignal,
      signalArgs: [{ type: 'hold', holder, requestId: 'turn-1' }],
    });
    await expect.poll(async () => (await queue.query(deployStateQuery)).current?.phase, { timeout: 20_000, interval: 200 }).toBe('held');
    const revision = (sha: string): DeployRevision => ({ sha, trigger: 'push', actor: AUTHOR, upstreams: [], downstreams: [] });
    await queue.signal(deploySignal, { type: 'revision', revision: revision('1'.repeat(40)) });
    await queue.signal(deploySignal, { type: 'revision', revision: revision('2'.repeat(40)) });
    await expect.poll(async () => (await queue.query(deployStateQuery)).queued.length, { timeout: 20_000, interval: 200 }).toBe(2);

    expect(await valueOf('terrapin_deploy_queue_depth')).toBe(2);
    expect(await valueOf('terrapin_queue_queries_unanswered', { workflow: 'deploy' })).toBe(0);
    await queue.terminate('test done');
    await h.env.client.workflow.getHandle(holder).terminate('test done');
    await settlesAt('terrapin_deploy_queue_depth', {}, 0);
  });

  test('a lock held with a PR in line: one held, one queued; given back, the next in line holds it', async () => {
    const lockId = lockWorkflowId(OWNER, 'contended', 'app', 'default');
    const lock = h.env.client.workflow.getHandle(lockId);
    const [first, second] = ['pr:acme/contended#1', 'pr:acme/contended#2'];
    await bystander(first);
    await bystander(second);
    const ask = (kind: 'acquire' | 'release', workflowId: string, pr: number) => ({ kind, requestId: `${kind}-${pr}`, holder: { workflowId, pr } });

    await h.env.client.workflow.signalWithStart(LOCK_WORKFLOW_TYPE, {
      workflowId: lockId,
      taskQueue: h.taskQueue,
      args: [{} satisfies LockInput],
      signal: lockRequestSignal,
      signalArgs: [ask('acquire', first, 1)],
    });
    await lock.signal(lockRequestSignal, ask('acquire', second, 2));
    await expect.poll(async () => (await lock.query(lockQueueQuery)).length, { timeout: 20_000, interval: 200 }).toBe(1);
    await settlesAt('terrapin_locks_held', {}, 1);
    expect(await valueOf('terrapin_lock_queue_depth')).toBe(1);
    expect(await valueOf('terrapin_queue_queries_unanswered', { workflow: 'lock' })).toBe(0);

    await lock.signal(lockRequestSignal, ask('release', first, 1));
    await expect.poll(async () => (await lock.query(lockQueueQuery)).length, { timeout: 20_000, interval: 200 }).toBe(0);
    expect(await valueOf('terrapin_lock_queue_depth')).toBe(0);
    expect(await valueOf('terrapin_locks_held')).toBe(1);

    await lock.signal(lockRequestSignal, ask('release', second, 2));
    await lock.result();
    await settlesAt('terrapin_locks_held', {}, 0);
    for (const id of [first, second]) await h.env.client.workflow.getHandle(id).terminate('test done');
  });

  test('labels stay within their fixed sets', async () => {
    for (const name of ['terrapin_approvals_waiting', 'terrapin_queue_queries_unanswered']) {
      for (const s of await gauge(name)) expect(['pr', 'deploy', 'operator', 'lock']).toContain(s.labels.workflow);
    }
    for (const name of ['terrapin_locks_held', 'terrapin_deploy_queue_depth', 'terrapin_lock_queue_depth']) {
      expect((await gauge(name)).map((s) => s.labels)).toEqual([{}]);
    }
  });
});
