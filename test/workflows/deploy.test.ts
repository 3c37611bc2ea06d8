// Deploys after merge, end to end on a real Temporal server with real terraform and git; GitHub mocked at
// HTTP with every call asserted. Each test has a repository of its own whose project says `apply:
// afterMerge` (its own state file, PR numbers and deploy workflow), and starts from main as deployed by
// hand or from nothing: no test builds on what another deployed.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, deployStateQuery, deployWorkflowId, type DeployStatus } from '../../shared/contracts.ts';
import { SEARCH_ATTRIBUTES } from '../../shared/records.ts';
import { FAIL_ON_APPLY_MESSAGE, createFixtureRepo, readState, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { checkRunActionEvent, issueCommentEvent, pullRequestEvent, pushEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness, type RunningWorker } from '../helpers/workflow-harness.ts';
import { temporalCliPath } from '../helpers/temporal-cli.ts';

const CHECK_DEPLOY = 'terrapin/deploy: web';
// Several PRs of the project are open at once here: without `lock: off` the first would lock out the rest.
const CONFIG = 'deployOnPush: true\ndefaults:\n  apply: afterMerge\n  lock: off\nprojects:\n  - name: web\n    dir: web\n';
const AUTHOR = 'alice';
const WRITER = 'bob';

let h: Harness;
let worker: RunningWorker;
let tmp: string;
const fixtures: FixtureRepo[] = [];

/** One file per resource, so PRs changing different resources merge without conflicts. */
function web(resources: Record<string, string | { input: string; failOnApply: true }>): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [name, r] of Object.entries(resources)) {
    const { input, failOnApply } = typeof r === 'string' ? { input: r, failOnApply: false } : r;
    const fail = failOnApply ? `  triggers_replace = "fail"\n  provisioner "local-exec" {\n    command = "echo '${FAIL_ON_APPLY_MESSAGE}' >&2; exit 1"\n  }\n` : '';
    files[`web/${name}.tf`] = `resource "terraform_data" "${name}" {\n  input = "${input}"\n${fail}}\n`;
  }
  return files;
}

beforeAll(async () => {
  h = await startHarness();
  worker = await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-deploy-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  for (const f of fixtures) await f.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A test's own repository (acme/<name>), with resources a=a1 and b=b1 in `web`. */
interface Deploys {
  name: string;
  repo: FixtureRepo;
  stateFile: string;
  deployId: string;
}

async function deploys(name: string, opts: { deployedByHand?: boolean } = {}): Promise<Deploys> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const backend = `terraform {\n  backend "local" {\n    path = "${stateFile}"\n  }\n}\n`;
  const repo = await createFixtureRepo({ '.terrapin.yml': CONFIG, 'web/main.tf': backend, ...web({ a: 'a1', b: 'b1' }) });
  fixtures.push(repo);
  const d = { name, repo, stateFile, deployId: deployWorkflowId({ owner: 'acme', name }, 'web') };
  if (opts.deployedByHand) {
    // What main describes is deployed already, by hand: Terrapin has deployed nothing yet.
    const clone = await mkdtemp(join(tmp, `${name}-by-hand-`));
    await execa('git', ['clone', '-q', repo.cloneUrl, clone]);
    const tf = (...args: string[]) => execa('terraform', args, { cwd: join(clone, 'web'), env: { TF_IN_AUTOMATION: '1' } });
    await tf('init', '-input=false', '-no-color');
    await tf('apply', '-auto-approve', '-input=false', '-no-color');
    expect(await inputs(d)).toEqual({ a: 'a1', b: 'b1' });
  }
  return d;
}

async function inputs(d: Deploys): Promise<Record<string, unknown>> {
  const state = await readState(d.stateFile);
  return Object.fromEntries(state.resources.map((r) => [r.name, (r.instances[0]?.attributes.input as { value?: unknown } | undefined)?.value]));
}

const deployStatus = (d: Deploys): Promise<DeployStatus> => h.env.client.workflow.getHandle(d.deployId).query(deployStateQuery);

async function waitForDeploys(d: Deploys, count: number): Promise<DeployStatus> {
  const deadline = Date.now() + 90_000;
  let last: DeployStatus | undefined;
  while (Date.now() < deadline) {
    last = await deployStatus(d).catch(() => undefined);
    if (last && last.history.length >= count && !last.current) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`deploys did not finish: ${JSON.stringify(last)}`);
}

/**
 * Every finished deploy run of the repository is listed by its search attributes: how it ended, that a
 * merge started it, and at which commit. Listing goes through the visibility store, which may lag a little.
 */
async function expectListedRuns(d: Deploys, outcomes: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  let runs: Array<{ sha?: string; outcome?: string; trigger?: string }> = [];
  for (;;) {
    runs = [];
    for await (const run of h.env.client.workflow.list({ query: `WorkflowId = '${d.deployId}' AND TerrapinOutcome != 'running'` })) {
      const sa = run.typedSearchAttributes;
      runs.push({ sha: sa.get(SEARCH_ATTRIBUTES.headSha), outcome: sa.get(SEARCH_ATTRIBUTES.outcome), trigger: sa.get(SEARCH_ATTRIBUTES.trigger) });
    }
    if (runs.length >= outcomes.length || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(runs.map((r) => r.outcome).sort()).toEqual([...outcomes].sort());
  expect(runs.every((r) => r.trigger === 'merge' && /^[0-9a-f]{40}$/.test(r.sha ?? ''))).toBe(true);
}

/** A PR from a new branch off main with these files. */
async function openPr(d: Deploys, number: number, files: Record<string, string>): Promise<TestPr> {
  const baseSha = await d.repo.head();
  const headSha = await d.repo.commit(files, { branch: `pr-${number}` });
  return { owner: 'acme', repo: d.name, number, installationId: 42, cloneUrl: d.repo.cloneUrl, headSha, headRef: `pr-${number}`, baseRef: 'main', baseSha, author: AUTHOR };
}

const comment = (pr: TestPr, body: string, login: string, commentId: number) => h.receive('issue_comment', issueCommentEvent(pr, body, { login, commentId }));

/** Opens the PR and has a writer approve its plan: on the PR, the after-merge check passes. */
async function planAndApprove(gh: GithubMock, pr: TestPr, commentId: number): Promise<void> {
  gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(pr.number, (b) => b.includes('**Terrapin plan**'))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Will apply after merge: waiting for approval' });
  await h.receive('pull_request', pullRequestEvent('opened', pr));
  await gh.settled();
  await h.waitFor('acme', pr.repo, pr.number, (s) => s.plan?.status === 'ready');
  gh.reaction(commentId)
    .permission(WRITER, 'write')
    .prCommits(pr.number)
    .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Approved: will apply after merge' })
    .comment(pr.number, (b) => b.includes('**Approved by @bob: will apply after merge.**'));
  await comment(pr, '/approve', WRITER, commentId);
  await gh.settled();
  await h.waitFor('acme', pr.repo, pr.number, (s) => s.plan?.projects?.[0]?.status === 'approved');
}

/** The calls of a deploy that applies without asking. */
function expectDeployed(gh: GithubMock, number: number): void {
  gh.createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
    .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
    .comment(number, (b) => b.includes('**Deployed.**'))
    .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
}

const merged = (pr: TestPr, mergeCommitSha: string) => h.receive('pull_request', pullRequestEvent('closed', pr, { merged: true, mergeCommitSha }));
const prDone = (pr: TestPr) => h.env.client.workflow.getHandle(`pr:acme/${pr.repo}#${pr.number}`).result();

/** A PR approved, merged and deployed with every call asserted: the deploy a later one rolls back to. */
async function deployOnce(gh: GithubMock, d: Deploys, number: number, files: Record<string, string>): Promise<string> {
  const pr = await openPr(d, number, files);
  await planAndApprove(gh, pr, number * 100 + 1);
  const sha = await d.repo.merge(`pr-${number}`);
  gh.comment(number, /Deploying after merge/);
  expectDeployed(gh, number);
  await merged(pr, sha);
  await prDone(pr);
  await gh.settled();
  return sha;
}

describe('deploys after merge', () => {
  test('/apply is refused on the PR, /approve passes its apply check, and the merge deploys the approved plan', async () => {
    const d = await deploys('deploy-approved');
    const gh = new GithubMock('acme', d.name);
    const pr = await openPr(d, 1, web({ a: 'a2' }));
    await planAndApprove(gh, pr, 101);

    gh.reaction(102).permission(WRITER, 'write').comment(1, (b) => b.includes('`web` applies after merge.') && b.includes('apply: afterMerge'));
    await comment(pr, '/apply', WRITER, 102);
    await gh.settled();

    const m1 = await d.repo.merge('pr-1');
    gh.comment(1, (b) => b.includes('**Deploying after merge:**') && b.includes('`web`'));
    expectDeployed(gh, 1);
    await merged(pr, m1);
    expect(await prDone(pr)).toMatchObject({ merged: true });
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await inputs(d)).toEqual({ a: 'a2', b: 'b1' });
    const status = await waitForDeploys(d, 1);
    expect(status).toMatchObject({ deployed: m1, history: [{ sha: m1, outcome: 'deployed', pr: 1 }] });
    // The merge commit carries the check, not the PR head.
    expect(gh.calledWith('POST', '/check-runs').find((c) => c.body.name === CHECK_DEPLOY)?.body.head_sha).toBe(m1);
    await expectListedRuns(d, ['deployed']);
  });

  test('merges deploy in merge order, and an older revision arriving late is skipped with a note on its PR', async () => {
    // Deployed by hand: each PR's approved plan is then the change its merge deploys.
    const d = await deploys('deploy-order', { deployedByHand: true });
    const gh = new GithubMock('acme', d.name);
    const pr2 = await openPr(d, 2, web({ b: 'b2' }));
    const pr3 = await openPr(d, 3, web({ a: 'a3' }));
    await planAndApprove(gh, pr2, 201);
    await planAndApprove(gh, pr3, 301);

    const m2 = await d.repo.merge('pr-2');
    const m3 = await d.repo.merge('pr-3');
    gh.comment(2, /Deploying after merge/).comment(3, /Deploying after merge/);
    expectDeployed(gh, 2);
    expectDeployed(gh, 3);
    await merged(pr2, m2);
    await merged(pr3, m3);
    await Promise.all([prDone(pr2), prDone(pr3)]);
    await gh.settled();
    expect((await waitForDeploys(d, 2)).history).toEqual([
      { sha: m2, outcome: 'deployed', pr: 2 },
      { sha: m3, outcome: 'deployed', pr: 3 },
    ]);
    expect(await inputs(d)).toEqual({ a: 'a3', b: 'b2' });

    // PR 4 (a comment-only change) merges before PR 5, but its webhook arrives after PR 5 deployed.
    const pr4 = await openPr(d, 4, { 'web/notes.tf': '# deployed by Terrapin\n' });
    const pr5 = await openPr(d, 5, web({ a: 'a4' }));
    await planAndApprove(gh, pr5, 501);
    const m4 = await d.repo.merge('pr-4');
    const m5 = await d.repo.merge('pr-5');
    gh.comment(5, /Deploying after merge/);
    expectDeployed(gh, 5);
    await merged(pr5, m5);
    await prDone(pr5);
    await gh.settled();
    gh.comment(4, /Deploying after merge/)
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .comment(4, (b) => b.includes('**Skipped:**') && b.includes(`\`${m5.slice(0, 7)}\``) && b.includes('never deploys an older revision'))
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'skipped', title: 'Skipped' });
    await merged(pr4, m4);
    await prDone(pr4);
    await gh.settled();
    gh.assertNoUnexpected();
    expect((await waitForDeploys(d, 4)).history.slice(2)).toEqual([
      { sha: m5, outcome: 'deployed', pr: 5 },
      { sha: m4, outcome: 'skipped', pr: 4 },
    ]);
    expect(await inputs(d)).toEqual({ a: 'a4', b: 'b2' });
    await expectListedRuns(d, ['deployed', 'deployed', 'deployed', 'skipped']);
  });

  test('a merge plan that differs from the approved one waits for a fresh approval, across a worker restart', async () => {
    const d = await deploys('deploy-differs', { deployedByHand: true });
    const gh = new GithubMock('acme', d.name);
    const pr = await openPr(d, 6, web({ a: 'a5' }));
    await planAndApprove(gh, pr, 601);
    // Someone commits straight to main meanwhile: the merge commit now also changes b.
    await d.repo.commit(web({ b: 'b3' }), { message: 'direct change' });
    const m6 = await d.repo.merge('pr-6');

    gh.comment(6, /Deploying after merge/)
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .comment(6, (b) => b.includes('waits for approval') && b.includes('differs from the plan approved') && b.includes('terraform_data.b') && b.includes('/approve -p web'))
      .updateCheckRun(CHECK_DEPLOY, 'queued', { title: 'Waiting for approval' });
    await merged(pr, m6);
    await gh.settled();
    await waitForPhase(d, 'waiting-approval');
    await h.waitFor('acme', d.name, 6, (st) => st.deploys?.some((x) => x.status === 'waiting') ?? false);
    expect(await inputs(d)).toEqual({ a: 'a1', b: 'b1' });
    // What terrapin_approvals_waiting counts: the deploy waits, the merged PR does not.
    const waitingFor = async (workflowId: string) => (await h.env.client.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(SEARCH_ATTRIBUTES.waiting);
    expect(await waitingFor(d.deployId)).toBe('approval');
    expect(await waitingFor(`pr:acme/${d.name}#6`)).toBeUndefined();

    await worker.stop();
    worker = await h.startWorker();

    // A reader and the author are refused on the merged PR; nothing is applied.
    // A reader may run no command: answered once on the PR, without 👀, and nothing reaches the deploy.
    gh.permission('carol', 'read').comment(6, /`\/approve` needs write permission on this repository/);
    await comment(pr, '/approve', 'carol', 602);
    await gh.settled();
    // Asked twice: by the merged PR (may they run any command?) and by the deploy (may they approve it?).
    gh.reaction(603).permission(AUTHOR, 'write').permission(AUTHOR, 'write').comment(6, /you opened this pull request, so you cannot approve the deploy/);
    await comment(pr, '/approve', AUTHOR, 603);
    await gh.settled();
    expect(await inputs(d)).toEqual({ a: 'a1', b: 'b1' });

    // A writer presses Approve on the merge commit's deploy check.
    gh.permission(WRITER, 'write')
      .prCommits(6)
      .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
      .comment(6, (b) => b.includes('**Deployed.**') && b.includes('approved by @bob'))
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
    await h.receive('check_run', checkRunActionEvent({ ...pr, headSha: m6 }, 'approve', { login: WRITER, externalId: d.deployId }));
    await prDone(pr);
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await inputs(d)).toEqual({ a: 'a5', b: 'b3' });
    expect((await waitForDeploys(d, 1)).history).toEqual([{ sha: m6, outcome: 'deployed', pr: 6 }]);
    expect(await waitingFor(d.deployId)).toBeUndefined();
    await expectListedRuns(d, ['deployed']);
    await recordHistories([
      { file: 'deploy-merged-pr', workflowId: `pr:acme/${d.name}#6` },
      { file: 'deploy-asks', workflowId: d.deployId, sha: m6 },
    ]);
  });

  test('a failed apply compensates by applying the previously deployed revision again', async () => {
    const d = await deploys('deploy-rollback');
    const gh = new GithubMock('acme', d.name);
    // A first deploy, the one to roll back to.
    const before = await deployOnce(gh, d, 1, web({ a: 'a5' }));
    expect((await waitForDeploys(d, 1)).deployed).toBe(before);
    expect(await inputs(d)).toEqual({ a: 'a5', b: 'b1' });

    const pr = await openPr(d, 7, web({ a: { input: 'a6', failOnApply: true } }));
    await planAndApprove(gh, pr, 701);
    const m7 = await d.repo.merge('pr-7');
    gh.comment(7, /Deploying after merge/)
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
      .comment(7, (b) => b.includes(`**Deploy failed — rolled back to \`${before.slice(0, 7)}\`**`) && b.includes('provisioner failed on purpose'))
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'failure', title: 'Deploy failed — rolled back' });
    await merged(pr, m7);
    await prDone(pr);
    await gh.settled();
    gh.assertNoUnexpected();
    // The state is what the previous deploy left: a is a5 again, not the failed a6.
    expect(await inputs(d)).toEqual({ a: 'a5', b: 'b1' });
    const status = await waitForDeploys(d, 2);
    expect(status.deployed).toBe(before);
    expect(status.history.at(-1)).toEqual({ sha: m7, outcome: 'rolled-back', pr: 7 });
    await expectListedRuns(d, ['deployed', 'rolled-back']);
  });

  test('deployOnPush: a direct push deploys once a writer approves its check; a merge\'s push is left to its PR', async () => {
    const d = await deploys('deploy-push', { deployedByHand: true });
    const gh = new GithubMock('acme', d.name);
    const where = { owner: 'acme', repo: d.name, installationId: 42, cloneUrl: d.repo.cloneUrl };
    // The push of a PR's merge: that PR's workflow handles it (GitHub says the commit is PR 7's merge).
    const m7 = await d.repo.head();
    // No PR is open into main: none has a plan the push outdates.
    gh.pullsOfCommit(m7, [{ number: 7, merged: true }]).openPulls('main', []);
    await h.receive('push', pushEvent(where, { before: 'f'.repeat(40), after: m7, login: WRITER }));
    expect(await h.env.client.workflow.getHandle(`push:acme/${d.name}:${m7}`).result()).toEqual({ skipped: 'merged-pr', pr: 7 });
    await gh.settled();

    // A hotfix pushed to main changes b.
    const pushed = await d.repo.commit(web({ b: 'b4' }), { message: 'hotfix pushed to main' });
    // No PR to review it on: the check shows the plan.
    gh.pullsOfCommit(pushed, [])
      .openPulls('main', [])
      .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
      .updateCheckRun(CHECK_DEPLOY, 'queued', { title: 'Waiting for approval', summary: (t: string) => t.includes('without a pull request') && t.includes('terraform_data.b') && !t.includes('Not approved') });
    await h.receive('push', pushEvent(where, { before: m7, after: pushed, login: WRITER }));
    expect(await h.env.client.workflow.getHandle(`push:acme/${d.name}:${pushed}`).result()).toEqual({ queued: ['web'] });
    await gh.settled();
    await waitForPhase(d, 'waiting-approval');
    // Another branch's push is not the default branch's: no workflow starts.
    await h.receive('push', pushEvent(where, { before: m7, after: 'e'.repeat(40), login: WRITER, branch: 'feature' }));

    // A reader's press is refused on the check itself: there is no PR to reply on.
    const approveAs = (login: string) =>
      h.receive('check_run', checkRunActionEvent({ ...where, number: 0, headSha: pushed, headRef: 'main', baseRef: 'main', baseSha: m7, author: WRITER }, 'approve', { login, externalId: d.deployId }));
    gh.permission('eve', 'read').updateCheckRun(CHECK_DEPLOY, 'queued', {
      title: 'Waiting for approval',
      summary: (t: string) => t.includes('**Not approved:** @eve, approving the deploy of `web` needs write permission') && t.includes('terraform_data.b'),
    });
    await approveAs('eve');
    await gh.settled();
    expect(await inputs(d)).toEqual({ a: 'a1', b: 'b1' });

    gh.permission('carol', 'write')
      .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
      .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
    await approveAs('carol');
    const status = await waitForDeploys(d, 1);
    await gh.settled();
    gh.assertNoUnexpected();
    expect(status.history).toEqual([{ sha: pushed, outcome: 'deployed' }]);
    expect(await inputs(d)).toEqual({ a: 'a1', b: 'b4' });
    await expect(h.env.client.workflow.getHandle(`push:acme/${d.name}:${'e'.repeat(40)}`).describe()).rejects.toThrow();
  });

  test('permissions.approve before the change decides who approves its deploy: a PR cannot pick its own approvers', async () => {
    const d = await deploys('deploy-approvers', { deployedByHand: true });
    const gh = new GithubMock('acme', d.name);
    const asks = (number: number) =>
      gh.comment(number, /Deploying after merge/)
        .createCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Deploying / })
        .comment(number, (b) => b.includes('waits for approval') && b.includes('No plan of `web` was approved on this pull request'))
        .updateCheckRun(CHECK_DEPLOY, 'queued', { title: 'Waiting for approval' });
    const deploysAfterApproval = (number: number, commentId: number, approver: string) =>
      gh.reaction(commentId)
        .permission(approver, 'write')
        .permission(approver, 'write')
        .prCommits(number)
        .updateCheckRun(CHECK_DEPLOY, 'in_progress', { title: /^Applying / })
        .comment(number, (b) => b.includes('**Deployed.**') && b.includes(`approved by @${approver}`))
        .updateCheckRun(CHECK_DEPLOY, 'completed', { conclusion: 'success', title: 'Deployed' });
    /** Plans the PR and merges it without an approval on the PR: the deploy asks. */
    async function mergeUnapproved(number: number, files: Record<string, string>): Promise<{ pr: TestPr; sha: string }> {
      const pr = await openPr(d, number, files);
      gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
        .comment(number, (b) => b.includes('**Terrapin plan**'))
        .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
        .createCheckRun(CHECK_APPLY, 'queued', { title: 'Will apply after merge: waiting for approval' });
      await h.receive('pull_request', pullRequestEvent('opened', pr));
      await gh.settled();
      await h.waitFor('acme', d.name, number, (st) => st.plan?.status === 'ready');
      const sha = await d.repo.merge(`pr-${number}`);
      gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Merged before apply' });
      asks(number);
      await merged(pr, sha);
      await gh.settled();
      await waitForPhase(d, 'waiting-approval');
      // The PR routes `/approve` to a deploy only once the deploy has told it that it waits.
      await h.waitFor('acme', d.name, number, (st) => st.deploys?.some((x) => x.status === 'waiting') ?? false);
      return { pr, sha };
    }

    // PR 9 restricts deploy approvals to @dave. Its own deploy still goes by the rule before it: bob may approve.
    const restricted = `${CONFIG}permissions:\n  approve:\n    users: [dave]\n`;
    const { pr: pr9 } = await mergeUnapproved(9, { '.terrapin.yml': restricted, ...web({ a: 'a7' }) });
    deploysAfterApproval(9, 901, WRITER);
    await comment(pr9, '/approve', WRITER, 901);
    await prDone(pr9);
    await gh.settled();
    expect(await inputs(d)).toEqual({ a: 'a7', b: 'b1' });

    // PR 10 deploys under PR 9's rule: bob, a writer but not listed, is refused; dave approves.
    const { pr: pr10, sha: m10 } = await mergeUnapproved(10, web({ b: 'b5' }));
    gh.reaction(1001)
      .permission(WRITER, 'write')
      .permission(WRITER, 'write')
      .comment(10, /^@bob, `\.terrapin\.yml` as it was before this change \(`[0-9a-f]{7}`\) lets only @dave approve the deploy of `web`\.\n/);
    await comment(pr10, '/approve', WRITER, 1001);
    await gh.settled();
    expect(await inputs(d)).toEqual({ a: 'a7', b: 'b1' });
    deploysAfterApproval(10, 1002, 'dave');
    await comment(pr10, '/approve', 'dave', 1002);
    await prDone(pr10);
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await inputs(d)).toEqual({ a: 'a7', b: 'b5' });
    expect((await deployStatus(d)).history.map((x) => [x.pr, x.outcome])).toEqual([
      [9, 'deployed'],
      [10, 'deployed'],
    ]);
    await recordHistories([{ file: 'deploy-approval-permissions', workflowId: d.deployId, sha: m10 }]);
  });
});

/**
 * `RECORD_HISTORIES=deploy` records the histories below for test/workflows/replay.test.ts. A file that
 * exists is kept: it stands for runs already in flight, so add a new file rather than re-record one.
 */
async function recordHistories(records: Array<{ file: string; workflowId: string; sha?: string }>): Promise<void> {
  if (!(process.env.RECORD_HISTORIES ?? '').split(',').includes('deploy')) return;
  for (const { file, workflowId, sha } of records) {
    const target = new URL(`../fixtures/histories/${file}.json`, import.meta.url);
    if (existsSync(target)) continue;
    const args = ['--workflow-id', workflowId];
    if (sha) {
      let runId = '';
      for await (const run of h.env.client.workflow.list({ query: `WorkflowId = '${workflowId}' AND TerrapinHeadSha = '${sha}'` })) runId = run.runId;
      args.push('--run-id', runId);
    }
    const { stdout } = await execa(temporalCliPath()!, ['workflow', 'show', '--address', h.env.address, ...args, '--output', 'json']);
    await writeFile(target, stdout);
  }
}

async function waitForPhase(d: Deploys, phase: NonNullable<DeployStatus['current']>['phase']): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if ((await deployStatus(d).catch(() => undefined))?.current?.phase === phase) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`deploy never reached ${phase}`);
}

describe('deploys of several projects from one merge', () => {
  test('run in dependency order, the downstream planned with the upstream\'s new outputs', async () => {
    const states = await mkdtemp(join(tmp, 'dag-'));
    const backend = (name: string) => `terraform {\n  backend "local" {\n    path = "${join(states, `${name}.tfstate`)}"\n  }\n}\n`;
    const net = (vpc: string) => `${backend('net')}resource "terraform_data" "vpc" {\n  input = "${vpc}"\n}\noutput "vpc_id" {\n  value = terraform_data.vpc.output\n}\n`;
    const app = (size: string) => `${backend('app')}variable "vpc_id" {}\nresource "terraform_data" "app" {\n  input = "\${var.vpc_id}/${size}"\n}\n`;
    const config = 'defaults:\n  apply: afterMerge\nprojects:\n  - name: net\n    dir: net\n  - name: app\n    dir: app\n    inputs:\n      vpc_id: net.outputs.vpc_id\n';
    const dag = await createFixtureRepo({ '.terrapin.yml': config, 'net/main.tf': net('vpc-1'), 'app/main.tf': app('small') });
    try {
      const baseSha = await dag.head();
      // What main describes is deployed already (net first: app reads its output).
      const clone = await mkdtemp(join(tmp, 'dag-base-'));
      await execa('git', ['clone', '-q', dag.cloneUrl, clone]);
      for (const [name, env] of [['net', {}], ['app', { TF_VAR_vpc_id: 'vpc-1' }]] as const) {
        const tf = (...args: string[]) => execa('terraform', args, { cwd: join(clone, name), env: { TF_IN_AUTOMATION: '1', ...env } });
        await tf('init', '-input=false', '-no-color');
        await tf('apply', '-auto-approve', '-input=false', '-no-color');
      }
      const headSha = await dag.commit({ 'net/main.tf': net('vpc-2'), 'app/main.tf': app('large') }, { branch: 'grow' });
      const pr: TestPr = { owner: 'acme', repo: 'dag', number: 1, installationId: 42, cloneUrl: dag.cloneUrl, headSha, headRef: 'grow', baseRef: 'main', baseSha, author: AUTHOR };
      const gh = new GithubMock('acme', 'dag');
      gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
      for (const name of ['net', 'app']) gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress', { title: /^Planning / });
      gh.comment(1, (b) => b.includes('| `net` |') && b.includes('| `app` |'));
      for (const name of ['net', 'app']) gh.updateCheckRun(`${CHECK_PLAN}: ${name}`, 'completed', { conclusion: 'success' });
      gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' }).createCheckRun(CHECK_APPLY, 'queued', { title: 'Will apply after merge: waiting for approval' });
      await h.receive('pull_request', pullRequestEvent('opened', pr));
      await gh.settled();
      await h.waitFor('acme', 'dag', 1, (s) => s.plan?.status === 'ready');

      gh.reaction(11).permission(WRITER, 'write').prCommits(1);
      for (const name of ['net', 'app']) gh.createCheckRun(`${CHECK_APPLY}: ${name}`, 'completed', { conclusion: 'success', title: 'Approved: will apply after merge' });
      gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Approved: will apply after merge' }).comment(1, /will apply after merge/);
      await h.receive('issue_comment', issueCommentEvent(pr, '/approve', { login: WRITER, commentId: 11 }));
      await gh.settled();

      const merge = await dag.merge('grow');
      gh.comment(1, (b) => b.includes('**Deploying after merge:**') && b.includes('`net`, `app`'));
      gh.createCheckRun('terrapin/deploy: net', 'in_progress', { title: /^Deploying / })
        .updateCheckRun('terrapin/deploy: net', 'in_progress', { title: /^Applying / })
        .comment(1, (b) => b.includes('**Terrapin deploy** of `net`') && b.includes('**Deployed.**'))
        .updateCheckRun('terrapin/deploy: net', 'completed', { conclusion: 'success', title: 'Deployed' });
      // app was approved reading vpc-1; planned after net's deploy it reads vpc-2: the same action with
      // another value is not what was approved, so it asks again.
      gh.createCheckRun('terrapin/deploy: app', 'in_progress', { title: /^Deploying / })
        .comment(1, (b) => b.includes('waits for approval') && b.includes('terraform_data.app: values of input changed'))
        .updateCheckRun('terrapin/deploy: app', 'queued', { title: 'Waiting for approval' });
      await h.receive('pull_request', pullRequestEvent('closed', pr, { merged: true, mergeCommitSha: merge }));
      await gh.settled();
      await h.waitFor('acme', 'dag', 1, (st) => st.deploys?.some((x) => x.project === 'app' && x.status === 'waiting') ?? false);
      gh.reaction(12)
        .permission(WRITER, 'write')
        .permission(WRITER, 'write')
        .prCommits(1)
        .updateCheckRun('terrapin/deploy: app', 'in_progress', { title: /^Applying / })
        .comment(1, (b) => b.includes('**Terrapin deploy** of `app`') && b.includes('**Deployed.**'))
        .updateCheckRun('terrapin/deploy: app', 'completed', { conclusion: 'success', title: 'Deployed' });
      await h.receive('issue_comment', issueCommentEvent(pr, '/approve -p app', { login: WRITER, commentId: 12 }));
      await h.env.client.workflow.getHandle('pr:acme/dag#1').result();
      await gh.settled();
      gh.assertNoUnexpected();
      // app was planned after net applied: it reads vpc-2, which only net's deploy of this merge produced.
      const app1 = await readState(join(states, 'app.tfstate'));
      expect((app1.resources[0]!.instances[0]!.attributes.input as { value: string }).value).toBe('vpc-2/large');
      const deployed = gh.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/comments') && c.body.body.includes('**Deployed.**')).map((c) => /deploy\*\* of `(\w+)`/.exec(c.body.body)![1]);
      expect(deployed).toEqual(['net', 'app']);
    } finally {
      await dag.cleanup();
    }
  });
});
