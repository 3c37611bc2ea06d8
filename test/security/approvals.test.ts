// Attacks on "an approval is one person's decision about one plan", mounted the way an attacker would:
// real PRs (real git commits, real terraform plans), real comment / review / button webhooks through the
// real Probot app, on a real Temporal server. Each asserts the refusal and that the state file did not
// change. GitHub is mocked at HTTP; every expected call is asserted and nothing else is allowed.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId, deployStateQuery, type DeployStatus } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { checkRunActionEvent, issueCommentEvent, pullRequestEvent, pushEvent, reviewSubmittedEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const OWNER = 'acme';
const AUTHOR = 'alice';
const WRITER = 'bob';
const READER = 'carol';
/** Two approvals: a first approval is recorded without applying, so a second (replayed) one would matter. */
const TWO_APPROVALS = 'defaults:\n  applyRequirements:\n    - approved: { count: 2 }\n';

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-sec-approvals-'));
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Scenario {
  pr: TestPr;
  repo: FixtureRepo;
  stateFile: string;
  gh: GithubMock;
  /** The state file's bytes before the attack. */
  before: string;
}

async function applyDir(dir: string): Promise<void> {
  const tf = (...args: string[]) => execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
  await tf('init', '-input=false', '-no-color');
  await tf('apply', '-auto-approve', '-input=false', '-no-color');
}

/** Applies a branch of the fixture repo directly, as if deployed before the test. */
async function applyBranch(repo: FixtureRepo, branch: string, subdir = '.'): Promise<void> {
  const dir = await mkdtemp(join(tmp, 'apply-'));
  await execa('git', ['clone', '-q', '--branch', branch, repo.cloneUrl, dir]);
  await applyDir(join(dir, subdir));
}

/** main has resource `a` applied; the PR branch adds `b`. `.terrapin.yml` (if any) is on both. */
async function scenario(name: string, number: number, config?: string): Promise<Scenario> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const files: Record<string, string> = { 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }) };
  if (config) files['.terrapin.yml'] = config;
  const repo = await createFixtureRepo(files);
  repos.push(repo);
  await applyBranch(repo, 'main');
  const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' }, b: { input: 'new' } } }) }, { branch: 'feature' });
  const pr: TestPr = { owner: OWNER, repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head('main'), author: AUTHOR };
  return { pr, repo, stateFile, gh: new GithubMock(OWNER, name), before: await readFile(stateFile, 'utf8') };
}

function expectPlan(s: Scenario, summary: string): void {
  s.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(s.pr.number, (b) => b.includes('**Terrapin plan**') && b.includes(summary))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: summary })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
}

/** Opens the PR and waits until its plan can be approved. */
async function planned(s: Scenario): Promise<void> {
  expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
  await h.receive('pull_request', pullRequestEvent('opened', s.pr));
  await s.gh.settled();
  await h.waitFor(OWNER, s.pr.repo, s.pr.number, (st) => st.plan?.status === 'ready' && st.plan.sha === s.pr.headSha);
}

/** A new commit on the PR branch (pushed by `sender`), re-planned. Returns the old head. */
async function pushed(s: Scenario, sender = AUTHOR): Promise<string> {
  const old = s.pr.headSha;
  s.pr.headSha = await s.repo.commit({ 'main.tf': terraformFixture({ stateFile: s.stateFile, resources: { a: { input: 'base' }, b: { input: 'newer' } } }) }, { branch: 'feature' });
  s.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'cancelled', title: 'Superseded by newer commits' }).minimize(/^IC_node/);
  expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
  await h.receive('pull_request', pullRequestEvent('synchronize', s.pr, { sender }));
  await s.gh.settled();
  await h.waitFor(OWNER, s.pr.repo, s.pr.number, (st) => st.plan?.status === 'ready' && st.plan.sha === s.pr.headSha);
  return old;
}

let commentSeq = 60_000;
const comment = (s: Scenario, body: string, login: string, opts: { id?: number; createdAt?: string } = {}) =>
  h.receive('issue_comment', issueCommentEvent(s.pr, body, { login, commentId: opts.id ?? commentSeq++, createdAt: opts.createdAt }));

/**
 * Proves that everything sent before was handled (events are handled in order): a writer's `/help` is
 * answered. Absence is proven by this event, never by waiting.
 */
async function handledSoFar(s: Scenario): Promise<void> {
  const id = commentSeq++;
  s.gh.permission('erin', 'write').reaction(id).comment(s.pr.number, (b) => b.includes('**Terrapin commands**'));
  await comment(s, '/help', 'erin', { id });
  await s.gh.settled();
  await h.waitFor(OWNER, s.pr.repo, s.pr.number, (st) => st.queued === 0);
}

async function expectNothingApplied(s: Scenario): Promise<void> {
  expect(await readFile(s.stateFile, 'utf8')).toBe(s.before);
  expect((await h.status(OWNER, s.pr.repo, s.pr.number)).plan?.status).not.toBe('applied');
}

describe('approvals on a PR', () => {
  test('a captured signed /approve re-sent with a new delivery id: no second reply, and after a push it does not approve the new plan', async () => {
    const s = await scenario('replay', 1, TWO_APPROVALS);
    await planned(s);
    const captured = issueCommentEvent(s.pr, '/approve', { login: WRITER, commentId: 101 });
    s.gh.reaction(101).permission(WRITER, 'write').prCommits(1).comment(1, (b) => b.includes('Approval by @bob recorded.') && b.includes('needs 2 approvals'));
    await h.receive('issue_comment', captured, randomUUID());
    await s.gh.settled();
    expect((await h.status(OWNER, 'replay', 1)).approvals).toEqual([WRITER]);

    // Re-sent as is (the body and its signature are what an attacker holds), with a fresh delivery id.
    await h.receive('issue_comment', captured, randomUUID());
    await handledSoFar(s);

    await pushed(s);
    expect((await h.status(OWNER, 'replay', 1)).approvals).toEqual([]);
    await h.receive('issue_comment', captured, randomUUID());
    await handledSoFar(s);
    expect((await h.status(OWNER, 'replay', 1)).approvals).toEqual([]);
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });

  test('an /approve written before the current plan was posted does not approve it', async () => {
    const s = await scenario('stale', 2);
    await planned(s);
    const tenMinutesAgo = new Date(Date.now() - 10 * 60_000).toISOString();
    s.gh
      .reaction(201)
      .permission(WRITER, 'write')
      .prCommits(2)
      .comment(2, (b) => b.startsWith(`@bob, your \`/approve\` was written before the current plan of \`${s.pr.headSha.slice(0, 7)}\` was posted, so it does not approve that plan.`));
    await comment(s, '/approve', WRITER, { id: 201, createdAt: tenMinutesAgo });
    await s.gh.settled();
    await h.waitFor(OWNER, 'stale', 2, (st) => st.queued === 0 && !st.job);
    expect((await h.status(OWNER, 'stale', 2)).approvals).toEqual([]);

    // An approving review submitted before the plan is refused the same way.
    s.gh.permission(WRITER, 'write').prCommits(2).comment(2, (b) => b.startsWith('@bob, your approving review was submitted before the current plan'));
    await h.receive('pull_request_review', reviewSubmittedEvent(s.pr, { login: WRITER, state: 'approved', commitId: s.pr.headSha, submittedAt: tenMinutesAgo }));
    await s.gh.settled();
    await handledSoFar(s);
    expect((await h.status(OWNER, 'stale', 2)).approvals).toEqual([]);
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });

  test('an Approve or Apply button on the check run of an older commit does nothing', async () => {
    const s = await scenario('button', 3);
    await planned(s);
    const old = await pushed(s);
    const press = (identifier: string) =>
      h.receive('check_run', checkRunActionEvent(s.pr, identifier, { login: WRITER, externalId: prWorkflowId(OWNER, 'button', 3), headSha: old, checkName: CHECK_APPLY }));
    s.gh.permission(WRITER, 'write').comment(3, (b) => b.startsWith(`@bob, that Approve button is on the check run of \`${old.slice(0, 7)}\`, which is not the commit of the current plan (\`${s.pr.headSha.slice(0, 7)}\`), so it does nothing.`));
    await press('approve');
    await s.gh.settled();
    s.gh.permission(WRITER, 'write').comment(3, (b) => b.startsWith('@bob, that Apply button is on the check run of'));
    await press('apply');
    await s.gh.settled();
    await handledSoFar(s);
    expect((await h.status(OWNER, 'button', 3)).approvals).toEqual([]);
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });

  test('a writer who pushed a commit to someone else\'s PR cannot approve it', async () => {
    const s = await scenario('pusher', 4);
    await planned(s);
    await pushed(s, 'mallory');
    s.gh.reaction(401).permission('mallory', 'write').comment(4, (b) => b.startsWith('@mallory, you pushed commits to this pull request, so you count as one of its authors and cannot approve its plan.'));
    await comment(s, '/approve', 'mallory', { id: 401 });
    await s.gh.settled();
    await handledSoFar(s);
    expect((await h.status(OWNER, 'pusher', 4)).approvals).toEqual([]);
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });

  test('the committer of one of the PR\'s commits cannot approve it (web-flow and unlinked commits are nobody)', async () => {
    const s = await scenario('committer', 5);
    await planned(s);
    s.gh
      .reaction(501)
      .permission('dave', 'write')
      .prCommits(5, [{ author: AUTHOR, committer: 'web-flow' }, { author: null, committer: 'dave' }])
      .comment(5, (b) => b.startsWith('@dave, you wrote or committed commits of this pull request, so you count as one of its authors and cannot approve its plan.'));
    await comment(s, '/approve', 'dave', { id: 501 });
    await s.gh.settled();
    await handledSoFar(s);
    expect((await h.status(OWNER, 'committer', 5)).approvals).toEqual([]);
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });
});

describe('outsiders and closed PRs', () => {
  test('an outsider (read permission) spamming 5 commands gets exactly one reply, no 👀, and nothing runs', async () => {
    const s = await scenario('spam', 6);
    await planned(s);
    s.gh.permission(READER, 'read').comment(6, (b) => b.startsWith('@carol, `/approve` needs write permission on this repository') && b.includes('further commands from you here get no reply'));
    for (let i = 0; i < 4; i++) s.gh.permission(READER, 'read');
    for (const body of ['/approve', '/apply', '/plan', '/unlock', '/help']) await comment(s, body, READER);
    await handledSoFar(s);
    expect(s.gh.comments().filter((b) => b.startsWith('@carol'))).toHaveLength(1);
    expect(s.gh.calledWith('POST', '/reactions')).toHaveLength(1); // erin's /help only
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });

  test('an outsider\'s unknown /foo gets no reply and no 👀 at all', async () => {
    const s = await scenario('foo', 7);
    await planned(s);
    s.gh.permission(READER, 'read');
    await comment(s, '/foo', READER);
    await handledSoFar(s);
    expect(s.gh.comments().filter((b) => b.includes('carol') || b.includes('/foo'))).toEqual([]);
    expect(s.gh.calledWith('POST', '/reactions')).toHaveLength(1); // erin's /help only
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });

  test('a comment on a closed PR gets one reply and its workflow ends', async () => {
    const s = await scenario('closedpr', 8);
    s.gh.pullRequest(8, { ...s.pr, state: 'closed' });
    s.gh.reaction(801).permission(WRITER, 'write').comment(8, /This pull request is closed, so `\/apply` does nothing/);
    await comment(s, '/apply', WRITER, { id: 801 });
    const outcome = await h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'closedpr', 8)).result();
    expect(outcome).toEqual({ merged: false, closedBefore: true });
    await s.gh.settled();
    await expectNothingApplied(s);
    s.gh.assertNoUnexpected();
  });

  test('/drift on a closed PR runs the drift check at the default branch', async () => {
    const stateFile = join(tmp, 'closeddrift.tfstate');
    const repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }), '.terrapin.yml': 'projects:\n  - name: infra\n    dir: .\n' });
    repos.push(repo);
    await applyBranch(repo, 'main');
    const before = await readFile(stateFile, 'utf8');
    const pr: TestPr = { owner: OWNER, repo: 'closeddrift', number: 9, installationId: 42, cloneUrl: repo.cloneUrl, headSha: await repo.head(), headRef: 'gone', baseRef: 'main', baseSha: await repo.head(), author: AUTHOR };
    const gh = new GithubMock(OWNER, 'closeddrift');
    gh.pullRequest(9, { ...pr, state: 'closed' });
    gh.reaction(901).permission(WRITER, 'write').comment(9, (b) => b.includes('Checking `infra` for drift at the default branch'));
    gh.openIssues([]);
    await h.receive('issue_comment', issueCommentEvent(pr, '/drift -p infra', { login: WRITER, commentId: 901 }));
    expect(await h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'closeddrift', 9)).result()).toEqual({ merged: false, closedBefore: true });
    expect(await h.env.client.workflow.getHandle('drift-run:acme/closeddrift:infra').result()).toMatchObject({ status: 'clean' });
    await gh.settled();
    expect(await readFile(stateFile, 'utf8')).toBe(before);
    gh.assertNoUnexpected();
  });
});

describe('deploy approvals', () => {
  const CHECK_DEPLOY = 'terrapin/deploy: web';

  interface DeployScenario {
    repo: FixtureRepo;
    name: string;
    stateFile: string;
    gh: GithubMock;
    before: string;
  }

  /** A repo whose project `web` deploys after merge, with `policy` added to its .terrapin.yml on main; `a` and `b` deployed. */
  async function deployRepo(name: string, policy: string): Promise<DeployScenario> {
    const stateFile = join(tmp, `${name}.tfstate`);
    const config = `deployOnPush: true\ndefaults:\n  apply: afterMerge\n  lock: off\n${policy}projects:\n  - name: web\n    dir: web\n`;
    const repo = await createFixtureRepo({
      '.terrapin.yml': config,
      'web/main.tf': `terraform {\n  backend "local" {\n    path = "${stateFile}"\n  }\n}\n`,
      'web/a.tf': 'resource "terraform_data" "a" {\n  input = "a1"\n}\n',
      'web/b.tf': 'resource "terraform_data" "b" {\n  input = "b1"\n}\n',
    });
    repos.push(repo);
    await applyBranch(repo, 'main', 'web');
    return { repo, name, stateFile, gh: new GithubMock(OWNER, name), before: await readFile(stateFile, 'utf8') };
  }

  const deployStatus = (d: DeployScenario): Promise<DeployStatus> => h.env.client.workflow.getHandle(`deploy:acme/${d.name}:web`).query(deployStateQuery);
  async function waitForPhase(d: DeployScenario, phase: string): Promise<void> {
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if ((await deployStatus(d).catch(() => undefined))?.current?.phase === phase) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`deploy never reached ${phase}`);
  }

  /** A PR changing web/, planned, merged without approval on the PR: the deploy asks for one. */
  async function mergedUnapproved(d: DeployScenario, number: number, files: Record<string, string | null>): Promise<TestPr> {
    const baseSha = await d.repo.head();
    const headSha = await d.repo.commit(files, { branch: `pr-${number}` });
    const pr: TestPr = { owner: OWNER, repo: d.name, number, installationId: 42, cloneUrl: d.repo.cloneUrl, headSha, headRef: `pr-${number}`, baseRef: 'main', baseSha, author: AUTHOR };
    d.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(number, (b) => b.includes('**Terrapin plan**'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
      .createCheckRun(CHECK_APPLY, 'queued', { title: 'Will apply after merge: waiting for approval' });
    await h.receive('pull_request', pullRequestEvent('opened', pr));
    await d.gh.settled();
    await h.waitFor(OWNER, d.name, number, (st) => st.plan?.status === 'ready');
    const sha = await d.repo.merge(`pr-${number}`);
    d.gh
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Merged before apply' })
      .comment(number, /Deploying after merge/)
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .comment(number, (b) => b.includes('waits for approval'))
      .updateCheckRun(CHECK_DEPLOY, 'queued', { title: 'Waiting for approval' });
    await h.receive('pull_request', pullRequestEvent('closed', pr, { merged: true, mergeCommitSha: sha }));
    await d.gh.settled();
    await waitForPhase(d, 'waiting-approval');
    // The PR routes `/approve` to a deploy only once the deploy has told it that it waits.
    await h.waitFor(OWNER, d.name, number, (st) => st.deploys?.some((x) => x.status === 'waiting') ?? false);
    return pr;
  }

  /** A writer's `/approve` on the merged PR: asked by the PR (any command at all?) and by the deploy. */
  const approveOnPr = (d: DeployScenario, pr: TestPr, login: string, id: number) => {
    d.gh.reaction(id).permission(login, 'write').permission(login, 'write');
    return h.receive('issue_comment', issueCommentEvent(pr, '/approve', { login, commentId: id }));
  };

  test('a deploy whose project needs 2 approvals (on the default branch) gets one: it still waits; a second writer deploys it', async () => {
    const d = await deployRepo('deploytwo', '  applyRequirements:\n    - approved: { count: 2 }\n');
    const pr = await mergedUnapproved(d, 1, { 'web/b.tf': 'resource "terraform_data" "b" {\n  input = "b2"\n}\n' });
    d.gh.prCommits(1).comment(1, (b) => b.startsWith('Approval by @bob recorded. The deploy of `web`') && b.includes('still waits') && b.includes('needs 2 approvals'));
    await approveOnPr(d, pr, WRITER, 1001);
    await d.gh.settled();
    expect((await deployStatus(d)).current?.phase).toBe('waiting-approval');
    expect(await readFile(d.stateFile, 'utf8')).toBe(d.before);

    // The same approval again (a replay reaching the deploy by another route) adds nothing.
    d.gh.permission(WRITER, 'write').comment(1, (b) => b.includes('still waits'));
    await h.receive('check_run', checkRunActionEvent({ ...pr, headSha: (await deployStatus(d)).current!.sha }, 'approve', { login: WRITER, externalId: `deploy:acme/${d.name}:web` }));
    await d.gh.settled();
    expect(await readFile(d.stateFile, 'utf8')).toBe(d.before);

    d.gh
      .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
      .comment(1, (b) => b.includes('**Deployed.**') && b.includes('@bob') && b.includes('@erin'))
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
    await approveOnPr(d, pr, 'erin', 1002);
    await h.env.client.workflow.getHandle(prWorkflowId(OWNER, d.name, 1)).result();
    await d.gh.settled();
    expect(await readFile(d.stateFile, 'utf8')).not.toBe(d.before);
    d.gh.assertNoUnexpected();
  });

  test('destroyNeeds on a deploy: a plan that destroys waits for the approvals it needs', async () => {
    const d = await deployRepo('deploydestroy', '  applyRequirements:\n    - approved\n    - destroyNeeds: { approvals: 2 }\n');
    const pr = await mergedUnapproved(d, 2, { 'web/a.tf': null });
    d.gh.prCommits(2).comment(2, (b) => b.startsWith('Approval by @bob recorded.') && b.includes('still waits') && b.includes('destroy'));
    await approveOnPr(d, pr, WRITER, 2001);
    await d.gh.settled();
    expect((await deployStatus(d)).current?.phase).toBe('waiting-approval');
    expect(await readFile(d.stateFile, 'utf8')).toBe(d.before);
    d.gh.assertNoUnexpected();
  });

  test('the pusher of a direct push (deployOnPush) cannot approve its deploy', async () => {
    const d = await deployRepo('deploypush', '');
    const before = await d.repo.head();
    const sha = await d.repo.commit({ 'web/b.tf': 'resource "terraform_data" "b" {\n  input = "pushed"\n}\n' }, { message: 'pushed straight to main' });
    d.gh
      .pullsOfCommit(sha, [])
      .openPulls('main', [])
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .updateCheckRun(CHECK_DEPLOY, 'queued', { title: 'Waiting for approval', summary: (t: string) => !t.includes('Not approved') });
    const where = { owner: OWNER, repo: d.name, installationId: 42, cloneUrl: d.repo.cloneUrl };
    await h.receive('push', pushEvent(where, { before, after: sha, login: 'mallory' }));
    await d.gh.settled();
    await waitForPhase(d, 'waiting-approval');

    d.gh.permission('mallory', 'write').updateCheckRun(CHECK_DEPLOY, 'queued', {
      title: 'Waiting for approval',
      summary: (t: string) => t.includes(`**Not approved:** @mallory, you pushed \`${sha.slice(0, 7)}\` to the default branch, so you count as an author of the deploy of \`web\` and cannot approve it.`),
    });
    await h.receive('check_run', checkRunActionEvent({ ...where, number: 0, headSha: sha, headRef: 'main', baseRef: 'main', baseSha: before, author: 'mallory' }, 'approve', { login: 'mallory', externalId: `deploy:acme/${d.name}:web` }));
    await d.gh.settled();
    expect((await deployStatus(d)).current?.phase).toBe('waiting-approval');
    expect(await readFile(d.stateFile, 'utf8')).toBe(d.before);
    expect(existsSync(d.stateFile)).toBe(true);
    d.gh.assertNoUnexpected();
  });
});
