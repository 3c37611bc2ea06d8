// The lock queue end to end: PRs refused for a project another PR holds wait in line and are planned,
// in order, when their turn comes (the holder closes, `/unlock`, `lock.ttl`). Real Probot app, Temporal
// dev server, worker, git and terraform; GitHub mocked at HTTP, every expected call asserted and nothing
// else allowed. Order and absence are read from the lock workflow (its holder and line), never slept on.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, lockActivityQuery, lockHolderQuery, lockQueueQuery, lockWorkflowId, prWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const OWNER = 'acme';
const WRITER = 'bob';
const PLANNED = 'Plan: 1 to add, 0 to change, 0 to destroy.';

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-lockq-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
});

afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Queue {
  name: string;
  repo: FixtureRepo;
  gh: GithubMock;
  /** The root project's lock: every PR here changes it. */
  lockId: string;
  prs: Record<number, TestPr>;
  /** twoProjects: where the projects' state files live. */
  states?: string;
}

/**
 * A repository whose main has resource `a` applied, and one branch per PR number, each adding its own
 * resource to the root project. `mainFiles` go on main (where the policy, `lock.ttl`, is read).
 */
async function queueRepo(name: string, numbers: number[], mainFiles: Record<string, string> = {}): Promise<Queue> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }), ...mainFiles });
  repos.push(repo);
  const dir = await mkdtemp(join(tmp, 'apply-'));
  await execa('git', ['clone', '-q', repo.cloneUrl, dir]);
  for (const args of [['init', '-input=false', '-no-color'], ['apply', '-auto-approve', '-input=false', '-no-color']]) await execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
  const baseSha = await repo.head('main');
  const prs: Record<number, TestPr> = {};
  for (const number of numbers) {
    const branch = `change-${number}`;
    const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' }, [`r${number}`]: { input: branch } } }) }, { branch });
    prs[number] = { owner: OWNER, repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: branch, baseRef: 'main', baseSha, author: `author${number}` };
  }
  return { name, repo, gh: new GithubMock(OWNER, name), lockId: lockWorkflowId(OWNER, name, '.', 'default'), prs };
}

const holderAt = async (lockId: string) => (await h.env.client.workflow.getHandle(lockId).query(lockHolderQuery))?.pr;
const lineAt = async (lockId: string) => (await h.env.client.workflow.getHandle(lockId).query(lockQueueQuery)).map((w) => w.pr);
/** Two projects, `app` and `db` (auto-detected dirs), each with its own state; each PR adds a resource to the ones it names. */
async function twoProjects(name: string, changes: Record<number, Array<'app' | 'db'>>): Promise<Queue> {
  const states = await mkdtemp(join(tmp, `${name}-states-`));
  const empty = (project: string) => terraformFixture({ stateFile: join(states, `${project}.tfstate`), resources: {} });
  const repo = await createFixtureRepo({ 'app/main.tf': empty('app'), 'db/main.tf': empty('db') });
  repos.push(repo);
  const baseSha = await repo.head('main');
  const q: Queue = { name, repo, gh: new GithubMock(OWNER, name), lockId: '', prs: {}, states };
  for (const [n, projects] of Object.entries(changes)) {
    const number = Number(n);
    const branch = `change-${number}`;
    const headSha = await repo.commit(projectFiles(q, number, projects), { branch });
    q.prs[number] = { owner: OWNER, repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: branch, baseRef: 'main', baseSha, author: `author${number}` };
  }
  return q;
}

/** The PR's version of both projects: a resource of its own in each it changes, the other as on main. */
function projectFiles(q: Queue, number: number, projects: Array<'app' | 'db'>): Record<string, string> {
  const file = (project: 'app' | 'db') =>
    terraformFixture({ stateFile: join(q.states!, `${project}.tfstate`), resources: projects.includes(project) ? { [`r${number}`]: { input: `pr-${number}` } } : {} });
  return { 'app/main.tf': file('app'), 'db/main.tf': file('db') };
}

const holderOf = async (q: Queue) => (await h.env.client.workflow.getHandle(q.lockId).query(lockHolderQuery))?.pr;
const activityOf = (q: Queue) => h.env.client.workflow.getHandle(q.lockId).query(lockActivityQuery);
const lineOf = async (q: Queue) => (await h.env.client.workflow.getHandle(q.lockId).query(lockQueueQuery)).map((w) => w.pr);

function expectPlan(q: Queue, number: number): void {
  q.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(number, (b) => b.includes('**Terrapin plan**') && b.includes(PLANNED))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: PLANNED })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
}

function expectQueued(q: Queue, number: number, holder: number, place: string): void {
  q.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(number, (b) => b.startsWith('**Queued:**') && b.includes(`#${holder} holds`) && b.includes(`this pull request is ${place} in line`) && b.includes('planned automatically'))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: `Queued behind #${holder} (${place} in line)` });
}

/** The next in line is told and planned at its head. */
function expectTurn(q: Queue, number: number, because: string): void {
  q.gh.comment(number, (b) => b.startsWith('**Lock free:**') && b.includes(because) && b.includes('Planning now'));
  expectPlan(q, number);
}

async function planned(q: Queue, number: number): Promise<void> {
  await q.gh.settled();
  await h.waitFor(OWNER, q.name, number, (st) => st.plan?.status === 'ready' && st.plan.sha === q.prs[number]!.headSha && !st.job);
}

async function open(q: Queue, number: number): Promise<void> {
  const delivery = `open-${q.name}-${number}`;
  await h.receive('pull_request', pullRequestEvent('opened', q.prs[number]!), delivery);
  await q.gh.settled();
  await h.waitHandled(OWNER, q.name, number, delivery);
}

async function close(q: Queue, number: number): Promise<void> {
  await h.receive('pull_request', pullRequestEvent('closed', q.prs[number]!));
  await h.env.client.workflow.getHandle(prWorkflowId(OWNER, q.name, number)).result();
}

describe('lock queue', () => {
  test('three PRs on one project are served in order: the holder closes, then /unlock, each next one planned automatically', async () => {
    const q = await queueRepo('lockq-order', [12, 13, 14]);
    expectPlan(q, 12);
    await open(q, 12);
    await planned(q, 12);

    expectQueued(q, 13, 12, 'next');
    await open(q, 13);
    expectQueued(q, 14, 12, '2nd');
    await open(q, 14);
    expect(await holderOf(q)).toBe(12);
    expect(await lineOf(q)).toEqual([13, 14]);
    expect((await h.status(OWNER, q.name, 14)).lockWait).toEqual([q.lockId]);

    // #12 closes: its lock goes to #13, which is told and planned; #14 moves up.
    q.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Pull request closed' });
    expectTurn(q, 13, '#12 released it');
    await close(q, 12);
    await planned(q, 13);
    expect(await holderOf(q)).toBe(13);
    expect(await lineOf(q)).toEqual([14]);
    expect((await h.status(OWNER, q.name, 13)).lockWait).toBeUndefined();

    // `/unlock` on #13: its plan goes, and #14 gets the lock and is planned.
    q.gh
      .reaction(7301)
      .permission(WRITER, 'write')
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Plan discarded' })
      .minimize()
      .comment(13, /Discarded this pull request's plan/);
    expectTurn(q, 14, '#13 released it');
    await h.receive('issue_comment', issueCommentEvent(q.prs[13]!, '/unlock', { login: WRITER, commentId: 7301 }), 'unlock-13');
    await planned(q, 14);
    await h.waitHandled(OWNER, q.name, 13, 'unlock-13');
    expect(await holderOf(q)).toBe(14);
    expect(await lineOf(q)).toEqual([]);
    q.gh.assertNoUnexpected();
  });

  test('a queued PR that closes leaves the line; the one after it keeps its turn and is planned when the holder closes', async () => {
    const q = await queueRepo('lockq-leave', [21, 22, 23]);
    expectPlan(q, 21);
    await open(q, 21);
    await planned(q, 21);
    expectQueued(q, 22, 21, 'next');
    await open(q, 22);
    expectQueued(q, 23, 21, '2nd');
    await open(q, 23);
    expect(await lineOf(q)).toEqual([22, 23]);

    // #22 had no plan: closing it calls GitHub for nothing, and takes it out of the line.
    await close(q, 22);
    expect(await lineOf(q)).toEqual([23]);
    expect(await holderOf(q)).toBe(21);

    q.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Pull request closed' });
    expectTurn(q, 23, '#21 released it');
    await close(q, 21);
    await planned(q, 23);
    expect(await holderOf(q)).toBe(23);
    expect(await lineOf(q)).toEqual([]);
    q.gh.assertNoUnexpected();
  });

  test('lock.ttl: a holder idle that long loses the lock (its plan discarded, told so), and the next in line is planned', async () => {
    const q = await queueRepo('lockq-ttl', [31, 32], { '.terrapin.yml': 'lock:\n  ttl: 12h\n' });
    // The test knob: the lock counts the TTL ("12h" in .terrapin.yml) as 15 seconds. Started before any
    // PR asks, so the PRs' requests reach this run.
    await h.env.client.workflow.start('lockWorkflow', { workflowId: q.lockId, taskQueue: h.taskQueue, args: [{ ttlOverrideMs: 15_000 }] });
    expectPlan(q, 31);
    await open(q, 31);
    await planned(q, 31);
    expectQueued(q, 32, 31, 'next');
    await open(q, 32);
    // Not yet expired: #31 still holds it.
    expect(await holderOf(q)).toBe(31);
    expect(await lineOf(q)).toEqual([32]);
    expect((await activityOf(q)).ttl).toBe('12h');

    // A command on #31 is activity: its lock's clock starts again.
    const before = (await activityOf(q)).lastActivity;
    q.gh.reaction(7401).permission(WRITER, 'write').comment(31, /Terrapin commands/);
    await h.receive('issue_comment', issueCommentEvent(q.prs[31]!, '/help', { login: WRITER, commentId: 7401 }), 'help-31');
    await q.gh.settled();
    await h.waitHandled(OWNER, q.name, 31, 'help-31');
    expect((await activityOf(q)).lastActivity).toBeGreaterThan(before);

    q.gh
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Plan discarded' })
      .minimize()
      .comment(31, (b) => b.startsWith('**Lock released:**') && b.includes('after 12h without activity') && b.includes('plan is discarded'));
    expectTurn(q, 32, '#31 held it 12h without activity');
    await planned(q, 32);
    expect(await holderOf(q)).toBe(32);
    // The lock's 15 seconds would run out on #32 too, after the test: it has shown what it had to.
    await h.env.client.workflow.getHandle(q.lockId).terminate('test over');
    expect((await h.status(OWNER, q.name, 31)).plan).toBeUndefined();
    q.gh.assertNoUnexpected();
  });

  test('a PR waiting for two locks is planned once it holds both, in one plan', async () => {
    const q = await twoProjects('lockq-two', { 61: ['app'], 62: ['app', 'db'], 63: ['db'] });
    const app = lockWorkflowId(OWNER, q.name, 'app', 'default');
    const db = lockWorkflowId(OWNER, q.name, 'db', 'default');
    expectPlan(q, 61);
    await open(q, 61);
    await planned(q, 61);
    expectPlan(q, 63);
    await open(q, 63);
    await planned(q, 63);

    // #62 changes both: refused for both, next in line for each, one comment with both rows.
    q.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
    for (const name of ['app', 'db']) q.gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress', { title: /^Planning / });
    q.gh.comment(62, (b) => b.includes('| queued, next in line behind #61 |') && b.includes('| queued, next in line behind #63 |') && b.includes('planned again automatically once it holds every lock'));
    q.gh.updateCheckRun(`${CHECK_PLAN}: app`, 'completed', { conclusion: 'failure', title: 'Queued behind #61 (next in line)' });
    q.gh.updateCheckRun(`${CHECK_PLAN}: db`, 'completed', { conclusion: 'failure', title: 'Queued behind #63 (next in line)' });
    q.gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure' });
    q.gh.createCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success' });
    await open(q, 62);
    expect((await h.status(OWNER, q.name, 62)).lockWait).toEqual([app, db]);

    // #61 closes: #62 holds app now, but still waits for db — no comment, no plan yet.
    q.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Pull request closed' });
    await close(q, 61);
    // Its notice handled (and nothing after it): whatever it was going to do, it did.
    await h.waitFor(OWNER, q.name, 62, (st) => st.lockWait?.length === 1 && st.handled.some((id) => id.startsWith('lock-')) && st.queued === 0 && !st.job);
    expect(await holderAt(app)).toBe(62);
    expect((await h.status(OWNER, q.name, 62)).lockWait).toEqual([db]);
    q.gh.assertNoUnexpected();

    // #63 closes: #62 holds both and is planned, both projects in one plan.
    q.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Pull request closed' });
    q.gh.comment(62, (b) => b.startsWith('**Lock free:** #63 released it') && b.includes('the lock on `app`, `db` is now'));
    q.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
    for (const name of ['app', 'db']) q.gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress', { title: /^Planning / });
    q.gh.comment(62, (b) => b.includes('**Terrapin plan**') && b.includes('| planned | 1 | 0 | 0 |'));
    for (const name of ['app', 'db']) q.gh.updateCheckRun(`${CHECK_PLAN}: ${name}`, 'completed', { conclusion: 'success' });
    q.gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' });
    // The queued report goes: its (empty) apply check is cancelled and its comment minimized.
    q.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'cancelled' }).minimize();
    q.gh.createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
    await close(q, 63);
    await q.gh.settled();
    const st = await h.waitFor(OWNER, q.name, 62, (x) => x.plan?.status === 'ready' && x.plan.projects?.length === 2 && !x.job);
    expect(st.plan!.projects!.map((p) => p.status)).toEqual(['planned', 'planned']);
    expect(st.lockWait).toBeUndefined();
    expect([await holderAt(app), await holderAt(db)]).toEqual([62, 62]);
    q.gh.assertNoUnexpected();
  });

  test('a queued PR whose push no longer changes a project leaves that line and keeps its place in the other', async () => {
    const q = await twoProjects('lockq-push', { 71: ['app', 'db'], 72: ['app', 'db'], 73: ['db'] });
    const app = lockWorkflowId(OWNER, q.name, 'app', 'default');
    const db = lockWorkflowId(OWNER, q.name, 'db', 'default');
    q.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
    for (const name of ['app', 'db']) q.gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress', { title: /^Planning / });
    q.gh.comment(71, (b) => b.includes('**Terrapin plan**'));
    for (const name of ['app', 'db']) q.gh.updateCheckRun(`${CHECK_PLAN}: ${name}`, 'completed', { conclusion: 'success' });
    q.gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' });
    q.gh.createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
    await open(q, 71);
    await h.waitFor(OWNER, q.name, 71, (x) => x.plan?.status === 'ready' && !x.job);

    q.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
    for (const name of ['app', 'db']) q.gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress', { title: /^Planning / });
    q.gh.comment(72, (b) => b.includes('| queued, next in line behind #71 |'));
    for (const name of ['app', 'db']) q.gh.updateCheckRun(`${CHECK_PLAN}: ${name}`, 'completed', { conclusion: 'failure', title: 'Queued behind #71 (next in line)' });
    q.gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure' });
    q.gh.createCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success' });
    await open(q, 72);
    expectQueued(q, 73, 71, '2nd');
    await open(q, 73);
    expect([await lineAt(app), await lineAt(db)]).toEqual([[72], [72, 73]]);

    // #72's push leaves app alone: its plan asks for db only (keeping its place) and it leaves app's line.
    const prev = q.prs[72]!;
    const headSha = await q.repo.commit(projectFiles(q, 72, ['db']), { branch: prev.headRef });
    q.prs[72] = { ...prev, headSha };
    q.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'cancelled' }).minimize();
    expectQueued(q, 72, 71, 'next');
    await h.receive('pull_request', pullRequestEvent('synchronize', q.prs[72]!), 'push-72');
    await q.gh.settled();
    await h.waitHandled(OWNER, q.name, 72, 'push-72');
    expect([await lineAt(app), await lineAt(db)]).toEqual([[], [72, 73]]);
    expect((await h.status(OWNER, q.name, 72)).lockWait).toEqual([db]);

    // #71 closes: app has nobody waiting; #72, first for db, is planned (db only).
    q.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Pull request closed' });
    expectTurn(q, 72, '#71 released it');
    await close(q, 71);
    await planned(q, 72);
    expect(await holderAt(db)).toBe(72);
    expect(await lineAt(db)).toEqual([73]);
    q.gh.assertNoUnexpected();
  });
});
