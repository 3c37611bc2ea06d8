// Policy checks end to end: real Probot app, real Temporal, real worker, git and terraform, the checks run
// in the real sandbox; GitHub mocked at HTTP, every call asserted. A failing check blocks apply until a
// policy owner (the operator's list, never an author) approves it; the PR's own `.terrapin.yml` cannot
// drop a check.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, CHECK_POLICY } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { findCheckov } from '../helpers/checkov.ts';

const OWNER = 'acme';
const AUTHOR = 'alice';
const WRITER = 'bob';
const OWNER_USER = 'carol';
const OTHER = 'dave';
const WORKER_SECRET = 'worker-aws-secret-9876';

let h: Harness;
/** Why checkov could not be found: the tests fail with this (never skip). */
let checkovMissing: string | undefined;
let tmp: string;
const repos: FixtureRepo[] = [];

/** The repository's own check, on its default branch: a script that fails any plan touching terraform_data.b. */
const REPO_POLICIES = ['policies:', '  - name: forbid-b', '    run: sh policies/forbid-b.sh', ''].join('\n');
const FORBID_B = 'if grep -q "terraform_data.b" "$PLAN_JSON"; then echo "terraform_data.b is not allowed in $PROJECT ($DIR, $WORKSPACE)"; exit 1; fi\necho "no terraform_data.b"\n';

/** A checkov custom policy of the operator's: terraform_data inputs must not be "new". */
const CHECKOV_RULE = [
  'metadata:',
  '  id: "CKV2_ACME_1"',
  '  name: "terraform_data inputs must not be new"',
  '  category: "GENERAL_SECURITY"',
  'definition:',
  '  cond_type: "attribute"',
  '  resource_types: ["terraform_data"]',
  '  attribute: "input"',
  '  operator: "not_equals"',
  '  value: "new"',
  '',
].join('\n');

beforeAll(async () => {
  h = await startHarness();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-policy-test-'));
  const rules = join(tmp, 'checkov-rules');
  await mkdir(rules);
  await writeFile(join(rules, 'not_new.yaml'), CHECKOV_RULE);
  const engine = await findCheckov().catch((err: Error) => {
    checkovMissing = err.message;
    return { bin: 'checkov-not-installed', dirs: [] };
  });
  // The operator's tool and rules are visible to checks through runner.paths, read-only.
  for (const path of [...engine.dirs, rules]) h.config.operatorPolicy.runner.paths.push({ path, writable: false });
  h.config.operatorPolicy.repositories.push({
    match: ['acme/policy-*'],
    // The operator's own check (passes when it can read the plan), and who may let a failed check through.
    // It prints its whole environment: the worker's credentials must not be in it.
    policies: [
      { name: 'plan-readable', run: 'env | sort; test -r "$PLAN_JSON" && echo "plan readable"', projects: ['*'] },
      { name: 'checkov', run: `${engine.bin} -f "$PLAN_JSON" --framework terraform_plan --external-checks-dir ${rules} --check CKV2_ACME_1 --compact --quiet --skip-download`, projects: ['*'] },
    ],
    policyOwners: { users: [OWNER_USER, AUTHOR], teams: [] },
    allowRepoPolicies: true,
  });
  // The worker passes cloud credentials to terraform; policy checks never get them.
  await h.startWorker({ terraformEnv: { allow: 'AWS_*', env: { AWS_SECRET_ACCESS_KEY: WORKER_SECRET } } });
  h.allowRunnerPath(tmp);
});

afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function scenario(name: string, number: number, headConfig: string) {
  const stateFile = join(tmp, `${name}.tfstate`);
  const repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }), '.terrapin.yml': REPO_POLICIES, 'policies/forbid-b.sh': FORBID_B });
  repos.push(repo);
  const dir = await mkdtemp(join(tmp, 'apply-'));
  await execa('git', ['clone', '-q', repo.cloneUrl, dir]);
  await execa('terraform', ['init', '-input=false'], { cwd: dir });
  await execa('terraform', ['apply', '-auto-approve', '-input=false'], { cwd: dir });
  // The PR adds terraform_data.b and tries to get past the check: its own .terrapin.yml, and a script that passes.
  const headSha = await repo.commit(
    { 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' }, b: { input: 'new' } } }), '.terrapin.yml': headConfig, 'policies/forbid-b.sh': 'exit 0\n' },
    { branch: 'feature' },
  );
  const pr: TestPr = { owner: OWNER, repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head('main'), author: AUTHOR };
  return { pr, repo, stateFile, gh: new GithubMock(OWNER, name) };
}

/** Expects the plan of terraform_data.b with the repository's check failing on it, and its reports. */
function expectFailingPlan(s: Awaited<ReturnType<typeof scenario>>, summary: string, checkovFails: boolean) {
  const failed = checkovFails ? 'checkov, forbid-b' : 'forbid-b';
  const checkovVerdict = checkovFails ? /checkov: failed[\s\S]*FAILED for resource: terraform_data\.b/ : /checkov: passed/;
  s.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(s.pr.number, (b) => b.includes('**Terrapin plan**') && b.includes(`Policy checks failed:** ${failed.split(', ').map((n) => `\`${n}\``).join(', ')}.`) && b.includes('terraform_data.b is not allowed in default (., default)') && b.includes('plan readable'))
    .createCheckRun(`${CHECK_POLICY}: default`, 'completed', {
      conclusion: 'failure',
      title: `Policy checks failed: ${failed}`,
      summary: (text: string) => /plan-readable: passed[\s\S]*checkov: [\s\S]*forbid-b: failed[\s\S]*terraform_data\.b is not allowed/.test(text) && checkovVerdict.test(text),
    })
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: summary })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
}

const stateOf = async (file: string) => JSON.parse(await readFile(file, 'utf8')).resources.map((r: { name: string }) => r.name);

describe('policy checks on a PR', () => {
  test('a failing check fails its policy check run, shows its findings, and blocks apply until a policy owner other than the author approves', async () => {
    if (checkovMissing) throw new Error(checkovMissing);
    // The PR's copy drops `policies` and its script passes everything: the default branch's check and script still count.
    const s = await scenario('policy-flow', 31, 'parallelism: 1\n');
    const check = `${CHECK_POLICY}: default`;
    expectFailingPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.', true);
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled(60_000);
    await h.waitFor(OWNER, 'policy-flow', 31, (st) => st.plan?.status === 'ready');
    const [planComment] = s.gh.comments();
    expect(planComment).toContain('takes effect after merge');
    // The check saw its plan, and nothing of the worker's environment.
    expect(planComment).toContain('PLAN_JSON=');
    expect(planComment).not.toContain(WORKER_SECRET);
    expect(planComment).not.toContain('AWS_SECRET_ACCESS_KEY');

    const say = (body: string, login: string, id: number) => h.receive('issue_comment', issueCommentEvent(s.pr, body, { login, commentId: id }));

    // A writer's approval is recorded, but the failed check still blocks: the reply names it.
    s.gh.reaction(9101).permission(WRITER, 'write').prCommits(31).comment(31, (b) => b.includes('cannot be applied yet') && b.includes('policy checks failed: `checkov`, `forbid-b`') && b.includes('/approve-policies'));
    await say('/approve', WRITER, 9101);
    await s.gh.settled();

    // The author is a listed policy owner, and still may not let their own change through.
    s.gh.reaction(9102).permission(AUTHOR, 'write').comment(31, /you cannot approve the failed policy checks of this pull request: you opened it/);
    await say('/approve-policies', AUTHOR, 9102);
    await s.gh.settled();

    // Someone the operator did not name is told who may.
    s.gh.reaction(9103).permission(OTHER, 'write').comment(31, (b) => b.includes('only a policy owner') && b.includes('@carol, @alice'));
    await say('/approve-policies', OTHER, 9103);
    await s.gh.settled();

    s.gh.reaction(9104).permission(WRITER, 'write').comment(31, (b) => b.includes('policy checks failed: `checkov`, `forbid-b`'));
    await say('/apply', WRITER, 9104);
    await s.gh.settled();
    expect(await stateOf(s.stateFile)).toEqual(['a']);

    // A policy owner who is no author approves: the check turns neutral, and /apply goes through.
    s.gh
      .reaction(9105)
      .permission(OWNER_USER, 'write')
      .prCommits(31)
      .updateCheckRun(check, 'completed', { conclusion: 'neutral', title: 'Policy checks failed; approved by @carol' })
      .comment(31, (b) => b.includes('Policy owner @carol approved') && b.includes('`default` (`checkov`, `forbid-b`)'));
    await say('/approve-policies', OWNER_USER, 9105);
    await s.gh.settled();

    s.gh
      .reaction(9106)
      .permission(WRITER, 'write')
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(31, (b) => b.includes('**Applied**') && b.includes('Failed policy checks were approved by @carol.'))
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied', summary: /approved by @carol/ });
    await say('/apply', WRITER, 9106);
    await s.gh.settled(60_000);
    await h.waitFor(OWNER, 'policy-flow', 31, (st) => st.plan?.status === 'applied');
    expect(await stateOf(s.stateFile)).toEqual(['a', 'b']);
    s.gh.assertNoUnexpected();
  }, 180_000);

  test('a new plan needs a new approval of its failed checks', async () => {
    if (checkovMissing) throw new Error(checkovMissing);
    const s = await scenario('policy-replan', 32, REPO_POLICIES);
    expectFailingPlan(s, 'Plan: 1 to add, 0 to change, 0 to destroy.', true);
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled(60_000);
    await h.waitFor(OWNER, 'policy-replan', 32, (st) => st.plan?.status === 'ready');
    const say = (body: string, login: string, id: number) => h.receive('issue_comment', issueCommentEvent(s.pr, body, { login, commentId: id }));

    s.gh
      .reaction(9201)
      .permission(OWNER_USER, 'write')
      .prCommits(32)
      .updateCheckRun(`${CHECK_POLICY}: default`, 'completed', { conclusion: 'neutral', title: 'Policy checks failed; approved by @carol' })
      .comment(32, /Policy owner @carol approved/);
    await say('/approve-policies -p default', OWNER_USER, 9201);
    await s.gh.settled();

    s.pr.headSha = await s.repo.commit({ 'main.tf': terraformFixture({ stateFile: s.stateFile, resources: { a: { input: 'base' }, b: { input: 'newer' }, c: {} } }) }, { branch: 'feature' });
    s.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'cancelled', title: 'Superseded by newer commits' }).minimize(/^IC_node/);
    // checkov now passes (b is "newer"); the repository's check still fails.
    expectFailingPlan(s, 'Plan: 2 to add, 0 to change, 0 to destroy.', false);
    await h.receive('pull_request', pullRequestEvent('synchronize', s.pr));
    await s.gh.settled(60_000);
    await h.waitFor(OWNER, 'policy-replan', 32, (st) => st.plan?.sha === s.pr.headSha && st.plan.status === 'ready');

    // A writer approves the new plan: the approval is recorded, but the policy approval of the old plan does not carry over.
    s.gh.reaction(9202).permission(WRITER, 'write').prCommits(32).comment(32, (b) => b.includes('cannot be applied yet') && b.includes('policy checks failed: `forbid-b`'));
    await say('/approve', WRITER, 9202);
    await s.gh.settled();
    expect(await stateOf(s.stateFile)).toEqual(['a']);
    // Nothing failed for `/approve-policies -p` to name on another project.
    s.gh.reaction(9203).permission(OWNER_USER, 'write').prCommits(32).comment(32, /No policy check failed on the plan of `[0-9a-f]{7}` for project `other`/);
    await say('/approve-policies -p other', OWNER_USER, 9203);
    await s.gh.settled();
    s.gh.assertNoUnexpected();
  }, 180_000);
});
