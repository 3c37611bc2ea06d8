// The core PR loop end to end: real Probot app, real Temporal dev server, real worker, real git and
// terraform; GitHub mocked at HTTP with nock, every expected call asserted and nothing else allowed.
import { appendFile, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { temporalCliPath } from '../helpers/temporal-cli.ts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId } from '../../shared/contracts.ts';
import { FAIL_ON_APPLY_MESSAGE, createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { expectGolden } from '../helpers/golden.ts';
import { checkRunActionEvent, issueCommentEvent, pullRequestEvent, reviewSubmittedEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness, type RunningWorker } from '../helpers/workflow-harness.ts';

const OWNER = 'acme';
const AUTHOR = 'alice';
const WRITER = 'bob';
const READER = 'carol';

let h: Harness;
let worker: RunningWorker;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  worker = await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-pr-test-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
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
}

/**
 * A repo whose main branch has resource `a` applied, and a PR branch with the given resources.
 * `mainFiles` are on the default branch too (where `.terrapin.yml`'s policy is read), `extraFiles` only on the PR.
 */
async function scenario(
  name: string,
  number: number,
  head: Parameters<typeof terraformFixture>[0]['resources'],
  extraFiles: Record<string, string> = {},
  mainFiles: Record<string, string> = {},
): Promise<Scenario> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const base = terraformFixture({ stateFile, resources: { a: { input: 'base' } } });
  const repo = await createFixtureRepo({ 'main.tf': base, ...mainFiles });
  repos.push(repo);
  await applyBranch(repo, 'main');
  const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: head }), ...extraFiles }, { branch: 'feature' });
  const pr: TestPr = {
    owner: OWNER,
    repo: name,
    number,
    installationId: 42,
    cloneUrl: repo.cloneUrl,
    headSha,
    headRef: 'feature',
    baseRef: 'main',
    baseSha: await repo.head('main'),
    author: AUTHOR,
  };
  return { pr, repo, stateFile, gh: new GithubMock(OWNER, name) };
}

/** Applies a branch of the fixture repo directly with terraform, as if deployed before the test. */
async function applyBranch(repo: FixtureRepo, branch: string): Promise<void> {
  const dir = await mkdtemp(join(tmp, 'apply-'));
  await execa('git', ['clone', '-q', '--branch', branch, repo.cloneUrl, dir]);
  const tf = (...args: string[]) => execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
  await tf('init', '-input=false', '-no-color');
  await tf('apply', '-auto-approve', '-input=false', '-no-color');
}

async function stateResources(stateFile: string): Promise<Record<string, unknown>> {
  const state = JSON.parse(await readFile(stateFile, 'utf8'));
  return Object.fromEntries(
    state.resources.map((r: any) => [r.name, r.instances[0]?.attributes?.input?.value ?? r.instances[0]?.attributes?.input]),
  );
}

/**
 * `RECORD_HISTORIES=locked npx vitest run test/workflows/pr.test.ts` records that scenario's history
 * for test/workflows/replay.test.ts. Never re-record an existing one: older recordings are what prove
 * that patched() keeps runs started by older code replaying.
 */
async function recordHistory(name: string, number: number): Promise<void> {
  if (!(process.env.RECORD_HISTORIES ?? '').split(',').includes(name)) return;
  // The CLI's JSON is the format production histories are exported in, so real ones can join these.
  const { stdout } = await execa(temporalCliPath()!, ['workflow', 'show', '--address', h.env.address, '--workflow-id', prWorkflowId(OWNER, name, number), '--output', 'json']);
  await writeFile(new URL(`../fixtures/histories/${name}.json`, import.meta.url), stdout);
}

let commentSeq = 5000;
const comment = (s: Scenario, body: string, login: string, id = commentSeq++) => h.receive('issue_comment', issueCommentEvent(s.pr, body, { login, commentId: id }));

function expectPlan(s: Scenario, summary: string | RegExp): void {
  s.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(s.pr.number, (b) => b.includes('**Terrapin plan**') && (typeof summary === 'string' ? b.includes(summary) : summary.test(b)))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: summary })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
}

describe('PR loop', () => {
  test('plan on open; /apply before approval, /approve by the author or a reader are refused; a writer approves and it applies; merge cleans up', async () => {
    const s = await scenario('happy', 1, { a: { input: 'base' }, b: { input: 'new' } });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled(20_000);

    const [planComment] = s.gh.comments();
    expect(planComment).toContain(`for \`${s.pr.headSha.slice(0, 7)}\``);
    expect(planComment).toMatch(/<details>[\s\S]*```diff\n[\s\S]*^\+ +resource "terraform_data" "b"/m);
    expect(planComment).toContain('/approve');
    const known = { '<head-sha>': s.pr.headSha, '<head>': s.pr.headSha.slice(0, 7) };
    expectGolden('plan-comment', planComment!, known);
    // The workflow records the plan once the last report call returned: wait for it, do not race it.
    const status = await h.waitFor(OWNER, 'happy', 1, (st) => st.plan?.status === 'ready');
    expect(status.plan).toMatchObject({ sha: s.pr.headSha, status: 'ready' });
    expect(status.plan!.planSha256).toMatch(/^[0-9a-f]{64}$/);

    s.gh.reaction(7001).permission(WRITER, 'write').comment(1, /cannot be applied yet/);
    await comment(s, '/apply', WRITER, 7001);
    await s.gh.settled(20_000);

    s.gh.reaction(7002).permission(AUTHOR, 'write').comment(1, /you opened this pull request/);
    await comment(s, '/approve', AUTHOR, 7002);
    await s.gh.settled(20_000);

    // A reader may run no command: one reply on this PR (no 👀), then silence.
    s.gh.permission(READER, 'read').comment(1, /needs write permission/);
    await comment(s, '/approve', READER, 7003);
    await s.gh.settled(20_000);
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });

    s.gh
      .reaction(7004)
      .permission(WRITER, 'write')
      .prCommits(1)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(1, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await comment(s, '/approve', WRITER, 7004);
    await s.gh.settled(20_000);
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'new' });
    expect((await h.status(OWNER, 'happy', 1)).plan?.status).toBe('applied');
    const replies = s.gh.comments();
    expectGolden('replies-refused', replies.slice(1, 4).join('\n---\n'), known);
    expectGolden('apply-comment', replies[4]!, known);

    const workDir = join(h.config.dataDir, 'work', OWNER, 'happy', 'pr-1');
    expect(existsSync(workDir)).toBe(true);
    await h.receive('pull_request', pullRequestEvent('closed', s.pr, { merged: true }));
    const result = await h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'happy', 1)).result();
    expect(result).toEqual({ merged: true, lastPlan: { sha: s.pr.headSha, status: 'applied' } });
    expect(existsSync(workDir)).toBe(false);
    s.gh.assertNoUnexpected();
    await recordHistory('happy', 1);
  });

  test('a worker stopped while waiting for approval: a new worker picks up the approval and applies', async () => {
    const s = await scenario('restart', 2, { a: { input: 'base' }, b: { input: 'after-restart' } });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    await worker.stop();
    worker = await h.startWorker();

    s.gh
      .reaction(7101)
      .permission(WRITER, 'write')
      .prCommits(2)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(2, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await comment(s, '/approve', WRITER, 7101);
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'after-restart' });
    s.gh.assertNoUnexpected();
  });

  test('a push while waiting invalidates the plan: old comment minimized, old apply check cancelled, stale review refused', async () => {
    const s = await scenario('push', 3, { a: { input: 'base' }, b: { input: 'v1' } });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    const oldSha = s.pr.headSha;

    s.pr.headSha = await s.repo.commit({ 'main.tf': terraformFixture({ stateFile: s.stateFile, resources: { a: { input: 'base' }, b: { input: 'v2' }, c: {} } }) }, { branch: 'feature' });
    s.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'cancelled', title: 'Superseded by newer commits' }).minimize(/^IC_node/);
    expectPlan(s, 'Plan: 2 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('synchronize', s.pr));
    await s.gh.settled();
    const pushed = await h.waitFor(OWNER, 'push', 3, (st) => st.plan?.sha === s.pr.headSha && st.plan.status === 'ready');
    expect(pushed.approvals).toEqual([]);

    s.gh.permission(WRITER, 'write').comment(3, /no longer the head of this pull request/);
    await h.receive('pull_request_review', reviewSubmittedEvent(s.pr, { login: WRITER, state: 'approved', commitId: oldSha }));
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });

    s.gh
      .permission(WRITER, 'write')
      .prCommits(3)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(3, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await h.receive('pull_request_review', reviewSubmittedEvent(s.pr, { login: WRITER, state: 'approved', commitId: s.pr.headSha }));
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'v2', c: null });
    s.gh.assertNoUnexpected();
    await recordHistory('push', 3);
  });

  test('apply failure rolls back to the base branch: the state file is back to what main describes', async () => {
    const s = await scenario('rollback', 4, { a: { input: 'changed' }, b: { failOnApply: true } });
    expectPlan(s, 'Plan: 1 to add, 1 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();

    s.gh
      .reaction(7401)
      .permission(WRITER, 'write')
      .prCommits(4)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(4, (b) => b.includes('rolled back') && b.includes(FAIL_ON_APPLY_MESSAGE))
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'failure', title: 'Apply failed — rolled back' });
    await comment(s, '/approve', WRITER, 7401);
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });
    const applyComment = s.gh.comments()[1]!;
    expect(applyComment).toContain('Apply complete! Resources: 0 added, 1 changed, 1 destroyed.');
    expectGolden(
      'apply-rolled-back-comment',
      applyComment,
      { '<head-sha>': s.pr.headSha, '<head>': s.pr.headSha.slice(0, 7), '<base-sha>': s.pr.baseSha, '<base>': s.pr.baseSha.slice(0, 7) },
      { elideOutput: true },
    );
    s.gh.assertNoUnexpected();
    await recordHistory('rollback', 4);
  });

  test('onFailure: none in .terrapin.yml turns the rollback off', async () => {
    const s = await scenario('norollback', 5, { a: { input: 'base' }, b: { failOnApply: true } }, {}, { '.terrapin.yml': 'onFailure: none\n' });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();

    s.gh
      .reaction(7501)
      .permission(WRITER, 'write')
      .prCommits(5)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(5, /rollback disabled/i)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'failure', title: 'Apply failed — rollback disabled' });
    await comment(s, '/approve', WRITER, 7501);
    await s.gh.settled();
    // The failed resource stays (tainted) in the state: nothing undid it.
    expect(Object.keys(await stateResources(s.stateFile)).sort()).toEqual(['a', 'b']);
    s.gh.assertNoUnexpected();
  });

  test('a plan error gives a failed check and a comment with the error output', async () => {
    const s = await scenario('planerror', 6, { a: { input: 'base' } }, { 'broken.tf': 'resource "terraform_data" "x" {\n  input = \n}\n' });
    s.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(6, (b) => /plan failed/i.test(b) && b.includes('The `init` step failed') && b.includes('broken.tf'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    expect((await h.status(OWNER, 'planerror', 6)).plan).toBeUndefined();
    s.gh.assertNoUnexpected();
  });

  test('bad input on the PR: terraform missing, a repository that fails to clone, a binary file, non-UTF-8 output', async () => {
    // terraform missing: the project asks for `tofu`, which this machine does not have.
    const missing = await scenario('notofu', 21, { a: { input: 'base' }, b: { input: 'new' } }, { '.terrapin.yml': 'defaults:\n  terraform: tofu\n' });
    missing.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(21, (b) => /plan failed/i.test(b) && /not found|ENOENT/i.test(b))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
    await h.receive('pull_request', pullRequestEvent('opened', missing.pr));
    await missing.gh.settled();
    missing.gh.assertNoUnexpected();

    // A head repository that cannot be cloned (a deleted fork's URL, say): the plan fails with the reason.
    const gone = await scenario('noclone', 22, { a: { input: 'base' } });
    gone.pr.cloneUrl = `${gone.pr.cloneUrl}-deleted`;
    gone.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(22, (b) => /plan failed/i.test(b) && b.includes('The `checkout` step failed'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
    await h.receive('pull_request', pullRequestEvent('opened', gone.pr));
    await gone.gh.settled();
    gone.gh.assertNoUnexpected();

    // A binary file in the PR and a provisioner printing bytes that are not UTF-8: planned and applied as usual.
    const bytes = await scenario('binary', 23, { a: { input: 'base' }, b: { input: 'new' } });
    bytes.pr.headSha = await bytes.repo.commit({
      'logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe]).toString('latin1'),
      'main.tf': terraformFixture({ stateFile: bytes.stateFile, resources: { a: { input: 'base' }, b: { input: 'new' } } }) + `resource "terraform_data" "noise" {\n  provisioner "local-exec" {\n    command = "printf 'caf\\\\351 \\\\377\\\\376\\\\n'"\n  }\n}\n`,
    }, { branch: 'feature' });
    expectPlan(bytes, 'Plan: 2 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', bytes.pr));
    await bytes.gh.settled();
    bytes.gh
      .reaction(8101)
      .permission(WRITER, 'write')
      .prCommits(23)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(23, (b) => b.includes('Applied') && b.includes('caf\uFFFD'))
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await comment(bytes, '/approve', WRITER, 8101);
    await bytes.gh.settled();
    bytes.gh.assertNoUnexpected();
  });

  test('a plan over 65,536 characters is posted as several comments, each within the limit, fences and details balanced', async () => {
    const resources = Object.fromEntries(Array.from({ length: 28 }, (_, i) => [`big${i}`, { input: `${i}-`.padEnd(2500, 'x') }]));
    const s = await scenario('bigplan', 7, { a: { input: 'base' }, ...resources });
    s.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(7, (b) => b.includes('**Terrapin plan**'))
      .comment(7, (b) => !b.includes('**Terrapin plan**') && b.includes('(continued)'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: 'Plan: 28 to add, 0 to change, 0 to destroy.' })
      .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    const parts = s.gh.comments();
    expect(parts.join('').length).toBeGreaterThan(70_000);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(65_536);
      expect(part.match(/<details>/g)?.length).toBe(part.match(/<\/details>/g)?.length);
      expect((part.match(/^```/gm)?.length ?? 0) % 2).toBe(0);
    }
    s.gh.assertNoUnexpected();
  });

  test('draft PRs wait until ready; buttons, /help, unknown commands and repeated deliveries behave', async () => {
    const s = await scenario('misc', 8, { a: { input: 'base' }, b: { input: 'button' } });
    s.pr.draft = true;
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await h.waitFor(OWNER, 'misc', 8, (st) => st.headSha === s.pr.headSha && st.queued === 0 && !st.job);
    expect((await h.status(OWNER, 'misc', 8)).plan).toBeUndefined();

    s.pr.draft = false;
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('ready_for_review', s.pr));
    await s.gh.settled();

    // A reader may run no command: /help is their one reply on this PR, without 👀.
    s.gh.permission(READER, 'read').comment(8, (b) => b.includes('**Terrapin commands**'));
    await comment(s, '/help', READER, 7801);
    await s.gh.settled();

    s.gh.permission(WRITER, 'write').reaction(7802).comment(8, /`\/aply` is not a Terrapin command\. Did you mean `\/apply`\?/);
    await comment(s, '/aply', WRITER, 7802);
    await s.gh.settled();

    // The same delivery signalled twice reaches the workflow once (the app dedupes too; this is the
    // workflow's own, durable guard).
    s.gh.permission(WRITER, 'write').reaction(7803).comment(8, (b) => b.includes('**Terrapin commands**'));
    const event = { type: 'command', deliveryId: 'dup-1', source: 'comment', actor: WRITER, commentId: 7803, command: { name: 'help', extraArgs: [] } };
    const handle = h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'misc', 8));
    await handle.signal('prEvent', event);
    await handle.signal('prEvent', event);
    await s.gh.settled();
    await h.waitFor(OWNER, 'misc', 8, (st) => st.queued === 0);

    s.gh
      .permission(WRITER, 'write')
      .prCommits(8)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(8, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await h.receive('check_run', checkRunActionEvent(s.pr, 'approve', { login: WRITER, externalId: prWorkflowId(OWNER, 'misc', 8) }));
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'button' });
    s.gh.assertNoUnexpected();
  });

  test('closing a PR with an unapplied plan closes its apply check and cleans up', async () => {
    const s = await scenario('closed', 9, { a: { input: 'base' }, b: { input: 'never' } });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    s.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Pull request closed' });
    await h.receive('pull_request', pullRequestEvent('closed', s.pr));
    const result = await h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'closed', 9)).result();
    expect(result).toEqual({ merged: false, lastPlan: { sha: s.pr.headSha, status: 'discarded' } });
    await s.gh.settled();
    expect(existsSync(join(h.config.dataDir, 'work', OWNER, 'closed', 'pr-9'))).toBe(false);
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });
    s.gh.assertNoUnexpected();
  });

  test('a push while a plan runs cancels that plan (terraform stopped) and plans the new head', { timeout: 120_000 }, async () => {
    // terraform blocks opening this named pipe for reading: a plan that runs until it is cancelled.
    const fifo = join(tmp, 'blocking-state.fifo');
    await execa('mkfifo', [fifo]);
    const blocking = `data "terraform_remote_state" "blocked" {\n  backend = "local"\n  config = { path = "${fifo}" }\n}\n`;
    const s = await scenario('cancel', 10, { a: { input: 'base' } }, { 'blocking.tf': blocking });
    s.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    // Only this PR's terraform: other test files run terraform at the same time.
    const terraformRunning = async () => {
      const { stdout } = await execa('pgrep', ['-f', 'terraform plan'], { reject: false });
      const cwds = await Promise.all(stdout.split('\n').filter(Boolean).map((pid) => readlink(`/proc/${pid}/cwd`).catch(() => '')));
      return cwds.some((cwd) => cwd.includes(`/work/${OWNER}/cancel/`));
    };
    // Until terraform is there (checkout, merge and init come first: slow on a loaded machine).
    for (let i = 0; i < 900 && !(await terraformRunning()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await terraformRunning()).toBe(true);
    expect((await h.status(OWNER, 'cancel', 10)).job).toBe('plan');

    s.pr.headSha = await s.repo.commit({ 'blocking.tf': null, 'main.tf': terraformFixture({ stateFile: s.stateFile, resources: { a: { input: 'base' }, d: {} } }) }, { branch: 'feature' });
    s.gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'cancelled', title: 'Plan cancelled' });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('synchronize', s.pr));
    await s.gh.settled();
    await h.waitFor(OWNER, 'cancel', 10, (st) => st.plan?.sha === s.pr.headSha && st.plan.status === 'ready');
    expect(await terraformRunning()).toBe(false);
    s.gh.assertNoUnexpected();
  });

  test('a plan whose reporting fails is not approvable', async () => {
    const s = await scenario('reportfail', 11, { a: { input: 'base' }, b: { input: 'unreported' } });
    s.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(11, /Plan: 1 to add/)
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
      .createCheckRun(CHECK_APPLY, 'queued', { failWith: 422 })
      .comment(11, (b) => b.includes('The `report` step failed') && b.includes('GitHub answered 422'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();

    s.gh.reaction(7111).permission(WRITER, 'write').prCommits(11).comment(11, /There is no current plan to `\/approve`/);
    await comment(s, '/approve', WRITER, 7111);
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });
    s.gh.assertNoUnexpected();
  });

  test('project locks: a second PR is queued naming the holder; /unlock hands it the lock and plans it; close releases', async () => {
    const first = await scenario('locked', 12, { a: { input: 'base' }, b: { input: 'first' } });
    expectPlan(first, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', first.pr));
    await first.gh.settled();

    const secondSha = await first.repo.commit({ 'main.tf': terraformFixture({ stateFile: first.stateFile, resources: { a: { input: 'base' }, c: { input: 'second' } } }) }, { branch: 'second' });
    const second: Scenario = { ...first, pr: { ...first.pr, number: 13, headSha: secondSha, headRef: 'second', author: 'dave' } };
    first.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(13, (b) => b.includes('#12 holds') && b.includes('next in line') && b.includes('`/unlock` on #12'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Queued behind #12 (next in line)' });
    await h.receive('pull_request', pullRequestEvent('opened', second.pr));
    await first.gh.settled();

    // `/unlock` on #12: #13, first in line, gets the lock and is planned without a command.
    first.gh
      .reaction(7201)
      .permission(WRITER, 'write')
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Plan discarded' })
      .minimize()
      .comment(12, /Discarded this pull request's plan/)
      .comment(13, /^\*\*Lock free:\*\* #12 released it/);
    expectPlan(second, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await comment(first, '/unlock', WRITER, 7201);
    await first.gh.settled();
    await h.waitFor(OWNER, 'locked', 13, (st) => st.plan?.status === 'ready' && !st.job);

    // Now #13 holds it: #12 waits in line until #13 closes, and is then planned again.
    first.gh
      .reaction(7203)
      .permission(WRITER, 'write')
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(12, /#13 holds/)
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Queued behind #13 (next in line)' });
    await comment(first, '/plan', WRITER, 7203);
    await first.gh.settled();

    first.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'neutral', title: 'Pull request closed' }).comment(12, /^\*\*Lock free:\*\* #13 released it/);
    expectPlan(first, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('closed', second.pr));
    await h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'locked', 13)).result();
    await first.gh.settled();
    await h.waitFor(OWNER, 'locked', 12, (st) => st.plan?.status === 'ready' && !st.job);
    first.gh.assertNoUnexpected();
    await recordHistory('locked', 12);
  });

  test('an invalid .terrapin.yml fails the plan with every error and position; a fixed push plans', async () => {
    const badConfig = 'onFailure: sometimes\nprojects:\n  - name: root\n    dir: ../outside\n    dependson: [x]\n';
    const s = await scenario('badconfig', 14, { a: { input: 'base' }, b: { input: 'cfg' } }, { '.terrapin.yml': badConfig });
    s.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(14, /`\.terrapin\.yml` is invalid/)
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Invalid .terrapin.yml' });
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    expectGolden('config-error-comment', s.gh.comments()[0]!, { '<head-sha>': s.pr.headSha, '<head>': s.pr.headSha.slice(0, 7) });
    expect((await h.status(OWNER, 'badconfig', 14)).plan).toBeUndefined();

    s.pr.headSha = await s.repo.commit({ '.terrapin.yml': 'onFailure: none\n' }, { branch: 'feature' });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('synchronize', s.pr));
    await s.gh.settled();
    s.gh.assertNoUnexpected();
  });

  test('apply requirements: a `when: label` rule asks for two approvals; the second one applies', async () => {
    const config = 'projects:\n  - name: root\n    dir: .\n    when:\n      - label: prod\n        applyRequirements: [{ approved: { count: 2 } }]\n';
    const s = await scenario('twoapprovals', 15, { a: { input: 'base' }, b: { input: 'prod' } }, {}, { '.terrapin.yml': config });
    s.pr.labels = ['prod'];
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();

    s.gh.reaction(7301).permission(WRITER, 'write').prCommits(15).comment(15, (b) => b.includes('Approval by @bob recorded.') && b.includes('needs 2 approvals from writers other than @alice; has 1 (@bob)'));
    await comment(s, '/approve', WRITER, 7301);
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });

    s.gh
      .reaction(7302)
      .permission('erin', 'admin')
      .prCommits(15)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(15, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await comment(s, '/approve', 'erin', 7302);
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'prod' });
    s.gh.assertNoUnexpected();
    await recordHistory('twoapprovals', 15);
  });

  test('apply requirements: team approval, mergeable and undiverged are read from GitHub and /apply says exactly what is missing', async () => {
    const config = 'defaults:\n  applyRequirements:\n    - approved: { teams: [acme/platform] }\n    - mergeable\n    - undiverged\n';
    const s = await scenario('facts', 16, { a: { input: 'base' }, b: { input: 'facts' } }, {}, { '.terrapin.yml': config });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    const basehead = `main...${s.pr.headSha}`;

    s.gh
      .reaction(7401)
      .permission(WRITER, 'write')
      .prCommits(16)
      .pull(16, { mergeable: false })
      .compare(basehead, { base: 'b'.repeat(40), mergeBase: 'm'.repeat(40) })
      .teamMembership('acme/platform', WRITER, false)
      .comment(
        16,
        (b) =>
          b.includes('**approved**: needs 1 approval from members of acme/platform, other than @alice; has 0; not counted: @bob') &&
          b.includes('**mergeable**') &&
          b.includes('**undiverged**'),
      );
    await comment(s, '/approve', WRITER, 7401);
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });

    s.gh
      .reaction(7402)
      .permission(WRITER, 'write')
      .pull(16, { mergeable: true })
      .compare(basehead, { base: 'b'.repeat(40), mergeBase: 'b'.repeat(40) })
      .teamMembership('acme/platform', WRITER, true)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(16, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await comment(s, '/apply', WRITER, 7402);
    await s.gh.settled();
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'facts' });
    s.gh.assertNoUnexpected();
  });

  test('a PR from a fork is not planned unless the default branch allows forks; the fork cannot allow itself', async () => {
    // The operator lets this repository decide (forks are off for every repository by default).
    h.config.operatorPolicy.repositories.push({ match: [`${OWNER}/forked`], allowForks: true });
    const s = await scenario('forked', 17, { a: { input: 'base' }, b: { input: 'from-fork' } }, { '.terrapin.yml': 'allowForks: true\n' });
    const forkDir = await mkdtemp(join(tmp, 'fork-'));
    await execa('git', ['clone', '-q', '--bare', s.repo.dir, forkDir]);
    s.pr.headCloneUrl = pathToFileURL(forkDir).href;
    s.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(17, /comes from a fork/)
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'neutral', title: 'Not planned: pull request from a fork' });
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    expect(existsSync(join(h.config.dataDir, 'work', OWNER, 'forked', 'pr-17', s.pr.headSha))).toBe(false);

    // The default branch allows forks: now the fork's head is planned.
    s.pr.baseSha = await s.repo.commit({ '.terrapin.yml': 'allowForks: true\n' });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('synchronize', s.pr));
    await s.gh.settled();
    s.gh.assertNoUnexpected();
  });

  test('out-of-order webhooks: opened arriving after synchronize changes nothing; a comment during the plan is answered', async () => {
    const s = await scenario('ordered', 19, { a: { input: 'base' }, b: { input: 'one' } });
    const opened = { ...s.pr };
    s.pr.headSha = await s.repo.commit({ 'main.tf': terraformFixture({ stateFile: s.stateFile, resources: { a: { input: 'base' }, b: { input: 'two' }, c: {} } }) }, { branch: 'feature' });
    expectPlan(s, 'Plan: 2 to add, 0 to change, 0 to destroy.');
    s.gh.permission('carol', 'read').comment(19, /Terrapin commands/);
    await h.receive('pull_request', pullRequestEvent('synchronize', s.pr, { updatedAt: '2026-11-21T10:00:05Z' }));
    await comment(s, '/help', 'carol', 7991);
    await h.receive('pull_request', pullRequestEvent('opened', opened, { updatedAt: '2026-11-21T10:00:00Z' }));
    await s.gh.settled();
    const st = await h.waitFor(OWNER, 'ordered', 19, (x) => x.plan?.status === 'ready' && !x.job && x.queued === 0);
    expect({ head: st.headSha, planned: st.plan!.sha }).toEqual({ head: s.pr.headSha, planned: s.pr.headSha });
    s.gh.assertNoUnexpected();
  });

  test('command permissions come from the base branch: a level, a user list and teams; the PR cannot loosen them', async () => {
    const loose = 'permissions:\n  plan: { level: read }\n  approve: { level: read, allowAuthor: true }\n';
    // main's rules are strict; the PR (branched from them, so it merges cleanly) loosens them in its own copy.
    const strict = 'permissions:\n  plan: { level: admin }\n  approve: { users: [carol], teams: [acme/sre] }\n';
    const s = await scenario('perms', 20, { a: { input: 'base' }, b: { input: 'new' } }, { '.terrapin.yml': loose }, { '.terrapin.yml': strict });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    await h.waitFor(OWNER, 'perms', 20, (st) => st.plan?.status === 'ready');

    s.gh.reaction(8001).permission(WRITER, 'write').comment(20, /`\/plan` needs admin permission/);
    await comment(s, '/plan', WRITER, 8001);
    await s.gh.settled();
    s.gh.reaction(8002).permission(WRITER, 'write').teamMembership('acme/sre', WRITER, false).comment(20, (b) => b.includes('lets only @carol and members of `acme/sre` run `/approve`'));
    await comment(s, '/approve', WRITER, 8002);
    await s.gh.settled();
    // The author is refused even though the PR's own .terrapin.yml says allowAuthor.
    s.gh.reaction(8003).permission(AUTHOR, 'admin').teamMembership('acme/sre', AUTHOR, true).comment(20, /you opened this pull request/);
    await comment(s, '/approve', AUTHOR, 8003);
    await s.gh.settled();
    expect((await h.status(OWNER, 'perms', 20)).approvals).toEqual([]);

    s.gh
      .reaction(8004)
      .permission('carol', 'write')
      .prCommits(20)
      .teamMembership('acme/sre', 'carol', false)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(20, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await comment(s, '/approve', 'carol', 8004);
    await s.gh.settled();
    await h.waitFor(OWNER, 'perms', 20, (st) => st.plan?.status === 'applied');
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'new' });
    s.gh.assertNoUnexpected();
  });

  test('a saved plan changed on disk after approval is never applied: the PR is told, and a new plan is made', async () => {
    const s = await scenario('tampered', 18, { a: { input: 'base' }, b: { input: 'reviewed' } });
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    const before = await h.waitFor(OWNER, 'tampered', 18, (st) => st.plan?.status === 'ready');
    // The plan was made in the work dir of the head merged into main.
    const planFile = join(h.config.dataDir, 'work', OWNER, 'tampered', 'pr-18', `${s.pr.headSha}+${s.pr.baseSha}.terrapin`, 'root--default--p1', 'run', 'plan.tfplan');
    await appendFile(planFile, 'tampered');

    s.gh
      .reaction(7901)
      .permission(WRITER, 'write')
      .prCommits(18)
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(18, /Nothing was applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'failure', title: 'Plan must be re-approved' })
      .minimize();
    expectPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.');
    await comment(s, '/approve', WRITER, 7901);
    await s.gh.settled();
    const after = await h.waitFor(OWNER, 'tampered', 18, (st) => st.plan?.status === 'ready' && st.plan.id !== before.plan!.id);
    // A new plan was made (a plan of the same code can hash the same: terraform's plan timestamp has one-second resolution).
    expect(after.plan!.id).toBeGreaterThan(before.plan!.id);
    expect(after.approvals).toEqual([]);
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });
    s.gh.assertNoUnexpected();
  });
});
