// The core PR loop end to end: real Probot app, real Temporal dev server, real worker, real git and
// terraform; GitHub mocked at HTTP with nock, every expected call asserted and nothing else allowed.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId } from '../../workflows/types.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, reviewSubmittedEvent, type TestPr } from '../helpers/payloads.ts';
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

/** A repo whose main branch has resource `a` applied, and a PR branch with the given resources. */
async function scenario(name: string, number: number, head: Parameters<typeof terraformFixture>[0]['resources'], extraFiles: Record<string, string> = {}): Promise<Scenario> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const base = terraformFixture({ stateFile, resources: { a: { input: 'base' } } });
  const repo = await createFixtureRepo({ 'main.tf': base });
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
    const status = await h.status(OWNER, 'happy', 1);
    expect(status.plan).toMatchObject({ sha: s.pr.headSha, status: 'ready' });
    expect(status.plan!.planSha256).toMatch(/^[0-9a-f]{64}$/);

    s.gh.reaction(7001).permission(WRITER, 'write').comment(1, /is not approved yet/);
    await comment(s, '/apply', WRITER, 7001);
    await s.gh.settled(20_000);

    s.gh.reaction(7002).permission(AUTHOR, 'write').comment(1, /you opened this pull request/);
    await comment(s, '/approve', AUTHOR, 7002);
    await s.gh.settled(20_000);

    s.gh.reaction(7003).permission(READER, 'read').comment(1, /needs write permission/);
    await comment(s, '/approve', READER, 7003);
    await s.gh.settled(20_000);
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base' });

    s.gh
      .reaction(7004)
      .permission(WRITER, 'write')
      .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
      .comment(1, /Applied/)
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await comment(s, '/approve', WRITER, 7004);
    await s.gh.settled(20_000);
    expect(await stateResources(s.stateFile)).toEqual({ a: 'base', b: 'new' });
    expect((await h.status(OWNER, 'happy', 1)).plan?.status).toBe('applied');

    const workDir = join(h.config.dataDir, 'work', OWNER, 'happy', 'pr-1');
    expect(existsSync(workDir)).toBe(true);
    await h.receive('pull_request', pullRequestEvent('closed', s.pr, { merged: true }));
    const result = await h.env.client.workflow.getHandle(prWorkflowId(OWNER, 'happy', 1)).result();
    expect(result).toEqual({ merged: true, lastPlan: { sha: s.pr.headSha, status: 'applied' } });
    expect(existsSync(workDir)).toBe(false);
    s.gh.assertNoUnexpected();
  });
});
