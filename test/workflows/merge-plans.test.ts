// Plans show what merging does (issue 11), end to end on a real Temporal server with real terraform and
// git; GitHub mocked at HTTP with every call asserted. A PR is planned as its head merged into its base's
// head; a push to the base outdates the plans it touches at once and plans those PRs again; approvals
// carry over only to a new plan with the same actions and values. Each test has its own repository.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, pushWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, readState, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, pushEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const AUTHOR = 'alice';
const WRITER = 'bob';
const CHECK_DEPLOY = 'terrapin/deploy: web';

let h: Harness;
let tmp: string;
const fixtures: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-merge-plans-'));
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  for (const f of fixtures) await f.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const resource = (name: string, input: string) => `resource "terraform_data" "${name}" {\n  input = "${input}"\n}\n`;

/** A repository acme/<name> whose projects live in `dirs`, each with its own local state in tmp. */
async function repoWith(name: string, config: string, dirs: string[], files: Record<string, string> = {}) {
  const backends = Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, `terraform {\n  backend "local" {\n    path = "${join(tmp, `${name}-${d}.tfstate`)}"\n  }\n}\n`]));
  const repo = await createFixtureRepo({ '.terrapin.yml': config, ...backends, ...files });
  fixtures.push(repo);
  const where = { owner: 'acme', repo: name, installationId: 42, cloneUrl: repo.cloneUrl };
  return { name, repo, where, gh: new GithubMock('acme', name), stateFile: (d: string) => join(tmp, `${name}-${d}.tfstate`) };
}
type Repo = Awaited<ReturnType<typeof repoWith>>;

/** A PR from a new branch off main's head now. */
async function branchPr(r: Repo, number: number, files: Record<string, string>): Promise<TestPr> {
  const baseSha = await r.repo.head();
  const headSha = await r.repo.commit(files, { branch: `pr-${number}` });
  return { ...r.where, number, headSha, headRef: `pr-${number}`, baseRef: 'main', baseSha, author: AUTHOR };
}

const comment = (pr: TestPr, body: string, commentId: number) => h.receive('issue_comment', issueCommentEvent(pr, body, { login: WRITER, commentId }));

/** Opens the PR; its plan is posted. `afterMerge`: its apply check waits for an approval to deploy after merge. */
async function open(r: Repo, pr: TestPr, plan: RegExp, afterMerge: boolean): Promise<void> {
  r.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(pr.number, (b) => b.includes('**Terrapin plan**') && plan.test(b))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
    .createCheckRun(CHECK_APPLY, 'queued', { title: afterMerge ? 'Will apply after merge: waiting for approval' : 'Waiting for approval' });
  await h.receive('pull_request', pullRequestEvent('opened', pr));
  await r.gh.settled();
  await h.waitFor('acme', r.name, pr.number, (s) => s.plan?.status === 'ready' && !s.job);
}

/** A writer approves an `apply: afterMerge` plan: its apply check passes. */
async function approve(r: Repo, pr: TestPr, commentId: number): Promise<void> {
  r.gh.reaction(commentId)
    .permission(WRITER, 'write')
    .prCommits(pr.number)
    .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Approved: will apply after merge' })
    .comment(pr.number, (b) => b.includes('**Approved by @bob: will apply after merge.**'));
  await comment(pr, '/approve', commentId);
  await r.gh.settled();
  await h.waitFor('acme', r.name, pr.number, (s) => s.plan?.projects?.[0]?.status === 'approved');
}

/** The calls of the new plan of a PR whose plan a push outdated (`approved`: it had been approved). */
function expectReplan(r: Repo, number: number, plan: RegExp, afterMerge: boolean): void {
  r.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Plan outdated: main moved' })
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(number, (b) => b.includes('**Terrapin plan**') && plan.test(b))
    .minimize()
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
    .createCheckRun(CHECK_APPLY, 'queued', { title: afterMerge ? 'Will apply after merge: waiting for approval' : 'Waiting for approval' });
}

/** A push of main from `before` to `after` (a merge of `mergedPr`, or a direct push), with the open PRs into main. */
async function push(r: Repo, before: string, after: string, openPrs: number[], mergedPr?: number) {
  r.gh.pullsOfCommit(after, mergedPr ? [{ number: mergedPr, merged: true }] : []).openPulls('main', openPrs);
  await h.receive('push', pushEvent(r.where, { before, after, login: WRITER }));
  return h.env.client.workflow.getHandle(pushWorkflowId({ owner: 'acme', name: r.name }, after)).result();
}

async function resourceNames(stateFile: string): Promise<string[]> {
  return (await readState(stateFile)).resources.map((x) => x.name).sort();
}

const AFTER_MERGE = 'defaults:\n  apply: afterMerge\n  lock: off\nprojects:\n  - name: web\n    dir: web\n';

describe('a PR is planned as merging it would make it', () => {
  test('the issue: B, branched before A merged and deployed, is planned again after it and shows only its own change', async () => {
    const r = await repoWith('merge-issue', AFTER_MERGE, ['web']);
    const main0 = await r.repo.head();
    const a = await branchPr(r, 1, { 'web/a.tf': resource('a1', 'x') + resource('a2', 'y') });
    const b = await branchPr(r, 2, { 'web/b.tf': resource('b1', 'z') });
    await open(r, a, /Plan: 2 to add, 0 to change, 0 to destroy\./, true);
    await open(r, b, /Plan: 1 to add, 0 to change, 0 to destroy\./, true);
    await approve(r, a, 101);
    await approve(r, b, 201);
    const planOfB = (await h.status('acme', r.name, 2)).plan!;

    // A merges and deploys.
    const m1 = await r.repo.merge('pr-1');
    r.gh.comment(1, /Deploying after merge/)
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
      .comment(1, (body) => body.includes('**Deployed.**'))
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
    await h.receive('pull_request', pullRequestEvent('closed', a, { merged: true, mergeCommitSha: m1 }));
    await h.env.client.workflow.getHandle(`pr:acme/${r.name}#1`).result();
    await r.gh.settled();
    expect(await resourceNames(r.stateFile('web'))).toEqual(['a1', 'a2']);

    // The push of A's merge outdates B's plan and plans it again, merged into main with A: only B's change.
    expectReplan(r, 2, /Plan: 1 to add, 0 to change, 0 to destroy\./, true);
    // The new plan does exactly what the approved one did: the approval stands.
    r.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Approved: will apply after merge' })
      .comment(2, (body) => body.includes('**Approvals kept for `web`.**'));
    expect(await push(r, main0, m1, [2], 1)).toEqual({ skipped: 'merged-pr', pr: 1, replanned: [2] });
    await r.gh.settled();
    const after = await h.waitHandled('acme', r.name, 2, `base-replan-${m1}`);
    expect(after.plan!.id).toBe(planOfB.id + 1);
    expect(after.plan!.summary).toBe('Plan: 1 to add, 0 to change, 0 to destroy.');
    expect(after.plan!.projects?.[0]?.status).toBe('approved');
    expect(after.approvals).toEqual([WRITER]);
    const bComments = r.gh.comments().filter((c) => c.includes('**Terrapin plan**'));
    expect(bComments.at(-1)).not.toMatch(/will be destroyed/);

    // B merges and deploys with that approval: A's resources stay.
    const m2 = await r.repo.merge('pr-2');
    r.gh.comment(2, /Deploying after merge/)
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
      .comment(2, (body) => body.includes('**Deployed.**'))
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
    await h.receive('pull_request', pullRequestEvent('closed', b, { merged: true, mergeCommitSha: m2 }));
    await h.env.client.workflow.getHandle(`pr:acme/${r.name}#2`).result();
    await r.gh.settled();
    r.gh.assertNoUnexpected();
    expect(await resourceNames(r.stateFile('web'))).toEqual(['a1', 'a2', 'b1']);
  });

  test('the push of a merge arrives while the merge deploys: the new plans wait for the deploy', async () => {
    const r = await repoWith('merge-race', AFTER_MERGE, ['web']);
    const main0 = await r.repo.head();
    // A's apply takes a while: planned before it ends, B's plan would show A's resources as its own.
    const slow = 'resource "terraform_data" "a1" {\n  input = "x"\n  provisioner "local-exec" {\n    command = "sleep 4"\n  }\n}\n';
    const a = await branchPr(r, 11, { 'web/a.tf': slow + resource('a2', 'y') });
    const b = await branchPr(r, 12, { 'web/b.tf': resource('b1', 'z') });
    await open(r, a, /Plan: 2 to add, 0 to change, 0 to destroy\./, true);
    await open(r, b, /Plan: 1 to add, 0 to change, 0 to destroy\./, true);
    await approve(r, a, 1101);
    await approve(r, b, 1201);

    const m1 = await r.repo.merge('pr-11');
    r.gh.comment(11, /Deploying after merge/)
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
      .comment(11, (body) => body.includes('**Deployed.**'))
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
    expectReplan(r, 12, /Plan: 1 to add, 0 to change, 0 to destroy\./, true);
    r.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Approved: will apply after merge' })
      .comment(12, (body) => body.includes('**Approvals kept for `web`.**'));
    // GitHub sends the merge's pull_request and push events together.
    await h.receive('pull_request', pullRequestEvent('closed', a, { merged: true, mergeCommitSha: m1 }));
    expect(await push(r, main0, m1, [12], 11)).toEqual({ skipped: 'merged-pr', pr: 11, replanned: [12] });
    await r.gh.settled();
    r.gh.assertNoUnexpected();
    const status = await h.waitHandled('acme', r.name, 12, `base-replan-${m1}`);
    expect(status.plan!.summary).toBe('Plan: 1 to add, 0 to change, 0 to destroy.');
    expect(status.approvals).toEqual([WRITER]);
  });

  test('a head that conflicts with its base: the files are named, the plan check fails, nothing runs', async () => {
    const r = await repoWith('merge-conflict', AFTER_MERGE, ['web'], { 'web/a.tf': resource('a', 'a1') });
    const pr = await branchPr(r, 3, { 'web/a.tf': resource('a', 'from the PR'), 'web/c.tf': resource('c', 'c1') });
    const base = await r.repo.commit({ 'web/a.tf': resource('a', 'from main') });
    r.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(3, (b) => b.includes('does not merge into `main`') && b.includes('- `web/a.tf`') && !b.includes('web/c.tf') && b.includes(`(\`${base.slice(0, 7)}\`)`))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Merge conflict with main' });
    const delivery = 'conflict-opened';
    await h.receive('pull_request', pullRequestEvent('opened', pr), delivery);
    const status = await h.waitHandled('acme', r.name, 3, delivery);
    await r.gh.settled();
    r.gh.assertNoUnexpected();
    expect(status.plan).toBeUndefined();
    // Nothing ran: no run of the project was started.
    const runs: string[] = [];
    for await (const w of h.env.client.workflow.list({ query: `WorkflowId STARTS_WITH 'run:acme/${r.name}:'` })) runs.push(w.workflowId);
    expect(runs).toEqual([]);
  });

  test('a push touching project x plans the PR on x again, not the PR on y', async () => {
    const config = 'defaults:\n  lock: off\nreplanOnBaseChange:\n  concurrency: 1\nprojects:\n  - name: x\n    dir: x\n  - name: y\n    dir: y\n';
    const r = await repoWith('merge-touch', config, ['x', 'y'], { 'x/r.tf': resource('x', 'x1'), 'y/r.tf': resource('y', 'y1') });
    const onX = await branchPr(r, 4, { 'x/r.tf': resource('x', 'x2') });
    const onY = await branchPr(r, 5, { 'y/r.tf': resource('y', 'y2') });
    await open(r, onX, /Plan: 1 to add/, false);
    await open(r, onY, /Plan: 1 to add/, false);
    const [x0, y0] = [(await h.status('acme', r.name, 4)).plan!, (await h.status('acme', r.name, 5)).plan!];

    const before = await r.repo.head();
    const pushed = await r.repo.commit({ 'x/more.tf': resource('x_more', 'm') }, { message: 'straight to main' });
    expectReplan(r, 4, /Plan: 2 to add/, false);
    expect(await push(r, before, pushed, [4, 5])).toEqual({ skipped: 'not-enabled', replanned: [4] });
    await r.gh.settled();
    r.gh.assertNoUnexpected();
    const x1 = await h.waitHandled('acme', r.name, 4, `base-replan-${pushed}`);
    expect(x1.plan!.id).toBe(x0.id + 1);
    // y's PR heard of the push and kept its plan.
    const y1 = await h.waitHandled('acme', r.name, 5, `base-moved-${pushed}`);
    expect(y1.plan).toEqual(y0);
    expect(y1.handled).not.toContain(`base-replan-${pushed}`);
  });

  test('concurrency 1: the second outdated PR is planned again only once the first PR\'s new plan is done', async () => {
    const config = 'defaults:\n  lock: off\nreplanOnBaseChange:\n  concurrency: 1\nprojects:\n  - name: x\n    dir: x\n';
    const r = await repoWith('merge-turns', config, ['x'], { 'x/r.tf': resource('x', 'x1') });
    const first = await branchPr(r, 7, { 'x/one.tf': resource('one', '1') });
    const second = await branchPr(r, 8, { 'x/two.tf': resource('two', '2') });
    await open(r, first, /Plan: 2 to add/, false);
    await open(r, second, /Plan: 2 to add/, false);

    const before = await r.repo.head();
    const pushed = await r.repo.commit({ 'x/r.tf': resource('x', 'x2') }, { message: 'straight to main' });
    expectReplan(r, 7, /Plan: 2 to add/, false);
    expectReplan(r, 8, /Plan: 2 to add/, false);
    expect(await push(r, before, pushed, [7, 8])).toEqual({ skipped: 'not-enabled', replanned: [7, 8] });
    await r.gh.settled();
    r.gh.assertNoUnexpected();

    // The push workflow's own history: both PRs told at once; PR 8's turn only after PR 7 said it was done.
    const history = await h.env.client.workflow.getHandle(pushWorkflowId({ owner: 'acme', name: r.name }, pushed)).fetchHistory();
    const steps: string[] = [];
    for (const e of history.events ?? []) {
      const sent = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
      if (sent) {
        const event = JSON.parse(Buffer.from(sent.input!.payloads![0]!.data!).toString()) as { type: string };
        steps.push(`${event.type} → #${/#(\d+)$/.exec(sent.workflowExecution!.workflowId!)![1]}`);
      }
      const got = e.workflowExecutionSignaledEventAttributes;
      if (got?.signalName === 'baseMovedReply') {
        const reply = JSON.parse(Buffer.from(got.input!.payloads![0]!.data!).toString()) as { pr: number; kind: string };
        steps.push(`#${reply.pr} ${reply.kind}`);
      }
    }
    expect(steps.slice(0, 2)).toEqual(['base-moved → #7', 'base-moved → #8']);
    expect(steps.slice(2, 4).sort()).toEqual(['#7 stale', '#8 stale']);
    expect(steps.slice(4)).toEqual(['base-replan → #7', '#7 replanned', 'base-replan → #8', '#8 replanned']);
  });

  test('/approve of a plan whose base moved under its project is refused, and the PR planned again; hooks see the base', async () => {
    const shas = join(tmp, 'merge-stale-approve.shas');
    const config = `defaults:\n  lock: off\n  hooks:\n    postPlan: echo "$BASE_SHA $HEAD_SHA" >> ${shas}\nprojects:\n  - name: web\n    dir: web\n`;
    const r = await repoWith('merge-stale-approve', config, ['web'], { 'web/a.tf': resource('a', 'a1') });
    const pr = await branchPr(r, 9, { 'web/b.tf': resource('b', 'b1') });
    await open(r, pr, /Plan: 2 to add/, false);
    const planned = (await h.status('acme', r.name, 9)).plan!;
    // main moves under the project; no push webhook reaches Terrapin.
    const moved = await r.repo.commit({ 'web/a.tf': resource('a', 'a2') }, { message: 'straight to main' });

    r.gh.reaction(901)
      .permission(WRITER, 'write')
      .prCommits(9)
      .comment(9, (b) => b.includes('**Nothing was approved: the plan is outdated.**') && b.includes(`\`main\` moved to \`${moved.slice(0, 7)}\``) && b.includes('`web`'));
    expectReplan(r, 9, /Plan: 2 to add/, false);
    await h.receive('issue_comment', issueCommentEvent(pr, '/approve', { login: WRITER, commentId: 901 }), 'stale-approve');
    await r.gh.settled();
    const status = await h.waitHandled('acme', r.name, 9, 'stale-approve');
    r.gh.assertNoUnexpected();
    expect(status.plan!.id).toBe(planned.id + 1);
    expect(status.approvals).toEqual([]);
    // Each plan's hook saw the base it was merged into, and the PR's head.
    const lines = (await readFile(shas, 'utf8')).trim().split('\n');
    expect(lines).toEqual([`${pr.baseSha} ${pr.headSha}`, `${moved} ${pr.headSha}`]);
  });

  test('an approved plan whose values change with the base needs a new approval', async () => {
    const files = { 'web/locals.tf': 'locals {\n  prefix = "p1"\n}\n', 'web/a.tf': 'resource "terraform_data" "a" {\n  input = "${local.prefix}-a1"\n}\n' };
    const r = await repoWith('merge-values', AFTER_MERGE, ['web'], files);
    const pr = await branchPr(r, 6, { 'web/a.tf': 'resource "terraform_data" "a" {\n  input = "${local.prefix}-a2"\n}\n' });
    await open(r, pr, /Plan: 1 to add/, true);
    await approve(r, pr, 601);

    // main changes the prefix: the merged plan still creates `a`, with another value.
    const before = await r.repo.head();
    const pushed = await r.repo.commit({ 'web/locals.tf': 'locals {\n  prefix = "p2"\n}\n' }, { message: 'new prefix' });
    expectReplan(r, 6, /Plan: 1 to add/, true);
    expect(await push(r, before, pushed, [6])).toEqual({ skipped: 'not-enabled', replanned: [6] });
    await r.gh.settled();
    const status = await h.waitHandled('acme', r.name, 6, `base-replan-${pushed}`);
    expect(status.plan!.projects?.[0]?.status).toBe('planned');
    expect(status.approvals).toEqual([]);
    expect(r.gh.comments().some((c) => c.includes('Approvals kept'))).toBe(false);
    r.gh.assertNoUnexpected();

    // Approved again, it is approved for the merge.
    await approve(r, pr, 602);
    r.gh.assertNoUnexpected();
  });
});
