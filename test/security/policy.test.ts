// Policy comes only from reviewed configuration (issue 9, section 1), attacked the way a repository writer
// would: real PRs (real git commits in fixture repos) delivered as webhooks, real comments, a real Temporal
// server, worker, git and terraform; GitHub mocked at HTTP, every call asserted. Each attack asserts the
// refusal the PR sees and that nothing was applied (the state file is byte for byte what main deployed).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const OWNER = 'acme';
const AUTHOR = 'alice';
const WRITER = 'bob';
const GIT_IDENTITY = { GIT_AUTHOR_NAME: 'Mallory', GIT_AUTHOR_EMAIL: 'm@x.invalid', GIT_COMMITTER_NAME: 'Mallory', GIT_COMMITTER_EMAIL: 'm@x.invalid' };

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-policy-'));
  h.allowRunnerPath(tmp);
});

afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Attack {
  name: string;
  pr: TestPr;
  repo: FixtureRepo;
  stateFile: string;
  /** The state file as main's deploy left it: every attack must leave it exactly so. */
  stateBefore: string;
  gh: GithubMock;
}

/**
 * A repository whose main branch (with `main` files, e.g. its reviewed `.terrapin.yml`) is deployed, and
 * an attacking PR branch `attack` (off `from`) that adds resource `b` and writes `files`.
 */
async function attack(
  name: string,
  number: number,
  opts: { main?: Record<string, string>; files?: Record<string, string>; base?: { branch: string; files?: Record<string, string> }; labels?: string[] } = {},
): Promise<Attack> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }), ...opts.main });
  repos.push(repo);
  await deploy(repo, 'main');
  const from = opts.base?.branch ?? 'main';
  if (opts.base) {
    await repo.createBranch(from);
    if (opts.base.files) await repo.commit(opts.base.files, { branch: from });
    await repo.createBranch('attack', from);
  }
  const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' }, b: { input: 'attack' } } }), ...opts.files }, { branch: 'attack' });
  const pr: TestPr = {
    owner: OWNER,
    repo: name,
    number,
    installationId: 42,
    cloneUrl: repo.cloneUrl,
    headSha,
    headRef: 'attack',
    baseRef: from,
    baseSha: await repo.head(from),
    author: AUTHOR,
    labels: opts.labels,
  };
  return { name, pr, repo, stateFile, stateBefore: await readFile(stateFile, 'utf8'), gh: new GithubMock(OWNER, name) };
}

/** Applies a branch with terraform directly, as the deploy before the test. */
async function deploy(repo: FixtureRepo, branch: string): Promise<void> {
  const dir = await mkdtemp(join(tmp, 'deploy-'));
  await execa('git', ['clone', '-q', '--branch', branch, repo.cloneUrl, dir]);
  const tf = (...args: string[]) => execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
  await tf('init', '-input=false', '-no-color');
  await tf('apply', '-auto-approve', '-input=false', '-no-color');
}

/** Commits `.terrapin.yml` as a symbolic link to `target` on the PR branch (fixture commits write regular files). */
async function commitConfigSymlink(repo: FixtureRepo, target: string): Promise<string> {
  const git = (...args: string[]) => execa('git', args, { cwd: repo.dir, env: GIT_IDENTITY });
  await git('checkout', '-q', 'attack');
  try {
    await rm(join(repo.dir, '.terrapin.yml'), { force: true });
    await symlink(target, join(repo.dir, '.terrapin.yml'));
    await git('add', '-A');
    await git('commit', '-q', '-m', 'config');
    return (await git('rev-parse', 'HEAD')).stdout.trim();
  } finally {
    await git('checkout', '-q', '-f', 'main');
  }
}

let commentSeq = 90_000;
const comment = (a: Attack, body: string, login: string, id = commentSeq++) => h.receive('issue_comment', issueCommentEvent(a.pr, body, { login, commentId: id }));

function expectPlan(a: Attack, extra: (body: string) => boolean = () => true): void {
  a.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(a.pr.number, (b) => b.includes('**Terrapin plan**') && b.includes('Plan: 1 to add, 0 to change, 0 to destroy.') && extra(b))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
}

async function openAndPlan(a: Attack, extra?: (body: string) => boolean): Promise<void> {
  expectPlan(a, extra);
  await h.receive('pull_request', pullRequestEvent('opened', a.pr));
  await a.gh.settled();
  await h.waitFor(OWNER, a.name, a.pr.number, (s) => s.plan?.status === 'ready' && !s.job);
}

/** `/apply` by a writer with no approval: refused, naming the approval the default branch asks for. */
async function applyIsRefused(a: Attack): Promise<void> {
  const id = commentSeq++;
  a.gh
    .reaction(id)
    .permission(WRITER, 'write')
    .comment(a.pr.number, (b) => b.includes('cannot be applied yet') && b.includes('**approved**: needs 1 approval from writers other than @alice; has 0'));
  await comment(a, '/apply', WRITER, id);
  await a.gh.settled();
  await nothingApplied(a);
}

async function nothingApplied(a: Attack): Promise<void> {
  const status = await h.waitFor(OWNER, a.name, a.pr.number, (s) => !s.job && s.queued === 0);
  expect(status.plan?.status ?? 'none').not.toBe('applied');
  expect(await readFile(a.stateFile, 'utf8')).toBe(a.stateBefore);
  a.gh.assertNoUnexpected();
}

/** Everything the bot wrote or recorded for a PR: comments, check runs, and its workflow history (payloads decoded). */
async function everythingWritten(a: Attack): Promise<string> {
  const checks = [...a.gh.calledWith('POST', '/check-runs'), ...a.gh.calledWith('PATCH', '/check-runs')].map((c) => JSON.stringify(c.body));
  const history = await h.env.client.workflow.getHandle(prWorkflowId(OWNER, a.name, a.pr.number)).fetchHistory();
  return [...a.gh.comments(), ...checks, ...textOf(history)].join('\n');
}

function textOf(value: unknown, out: string[] = []): string[] {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) textOf(v, out);
  return out;
}

const NO_REQUIREMENTS_NOTE = '**takes effect after merge**: `defaults.applyRequirements`';

describe('a PR cannot lower the requirements that guard its own apply', () => {
  test('defaults.applyRequirements: [] on the PR, then /apply → refused: one approval still needed', async () => {
    const a = await attack('sec-empty', 1, { files: { '.terrapin.yml': 'defaults:\n  applyRequirements: []\n' } });
    await openAndPlan(a, (b) => b.includes(NO_REQUIREMENTS_NOTE));
    await applyIsRefused(a);
  });

  test('applyRequirements: [mergeable] on the PR, then /apply → refused', async () => {
    const a = await attack('sec-mergeable', 2, { files: { '.terrapin.yml': 'defaults:\n  applyRequirements: [mergeable]\n' } });
    await openAndPlan(a, (b) => b.includes(NO_REQUIREMENTS_NOTE));
    await applyIsRefused(a);
  });

  test('a `when` rule with no requirements plus its label, then /apply → refused', async () => {
    const when = 'defaults:\n  when:\n    - label: hotfix\n      applyRequirements: []\n';
    const a = await attack('sec-when', 3, { files: { '.terrapin.yml': when }, labels: ['hotfix'] });
    await openAndPlan(a, (b) => b.includes('**takes effect after merge**: `defaults.when`'));
    await applyIsRefused(a);
  });

  test('project-level applyRequirements: [] for the existing project, then /apply → refused', async () => {
    const main = { '.terrapin.yml': 'projects:\n  - name: root\n    dir: .\n' };
    const a = await attack('sec-project', 4, { main, files: { '.terrapin.yml': 'projects:\n  - name: root\n    dir: .\n    applyRequirements: []\n' } });
    await openAndPlan(a, (b) => b.includes('**takes effect after merge**: `projects[root].applyRequirements`'));
    await applyIsRefused(a);
  });

  test('a project that exists only in the PR gets the default branch defaults, not its own applyRequirements: []', async () => {
    const a = await attack('sec-newproject', 5, { files: { '.terrapin.yml': 'projects:\n  - name: sneaky\n    dir: .\n    applyRequirements: []\n' } });
    await openAndPlan(a, (b) => b.includes('`projects[sneaky].applyRequirements`'));
    await applyIsRefused(a);
  });

  test('renaming a reviewed project onto another one’s dir is refused: it would carry the looser rules to that state', async () => {
    const main = { '.terrapin.yml': 'projects:\n  - name: root\n    dir: .\n  - name: scratch\n    dir: scratch\n    applyRequirements: []\n' };
    const renamed = 'projects:\n  - name: scratch\n    dir: .\n';
    const a = await attack('sec-rename', 6, { main: { ...main, 'scratch/main.tf': '' }, files: { '.terrapin.yml': renamed } });
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(6, (b) => b.includes('`.terrapin.yml:2:11: projects[0].name: project "scratch" is at dir "." (workspace "default"), which the default branch calls "root"'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Invalid .terrapin.yml' });
    await h.receive('pull_request', pullRequestEvent('opened', a.pr));
    await a.gh.settled();
    await nothingApplied(a);
  });

  test('the PR loosens permissions (approve: allowAuthor) and its author approves → refused', async () => {
    const loose = 'permissions:\n  approve: { level: read, allowAuthor: true }\n';
    const a = await attack('sec-perms', 7, { files: { '.terrapin.yml': loose } });
    await openAndPlan(a, (b) => b.includes('**takes effect after merge**: `permissions`'));
    const id = commentSeq++;
    a.gh.reaction(id).permission(AUTHOR, 'write').comment(7, /^@alice, you opened this pull request, so you cannot approve its plan\./);
    await comment(a, '/approve', AUTHOR, id);
    await a.gh.settled();
    expect((await h.status(OWNER, a.name, 7)).approvals).toEqual([]);
    await nothingApplied(a);
  });

  test('the operator’s requiredApplyRequirements cannot be dropped by the default branch’s own copy either', async () => {
    h.config.operatorPolicy.repositories.push({ match: [`${OWNER}/sec-operator`], requiredApplyRequirements: [{ kind: 'approved', count: 1, users: [], teams: [] }] });
    const a = await attack('sec-operator', 8, { main: { '.terrapin.yml': 'defaults:\n  applyRequirements: []\n' } });
    await openAndPlan(a);
    await applyIsRefused(a);
  });
});

describe('policy from a base branch the PR chose', () => {
  test('a branch `loose` with no requirements, targeted by the PR → one reply, neutral check; commands refused, once per push', async () => {
    // The attacker's own branch, created off main, with no requirements at all.
    const loose = 'defaults:\n  applyRequirements: []\npermissions:\n  approve: { allowAuthor: true }\n';
    const a = await attack('sec-loose', 10, { base: { branch: 'loose', files: { '.terrapin.yml': loose } } });
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(10, (b) => b.startsWith('**Not planned:** this pull request targets `loose`, and Terrapin plans, applies and deploys only pull requests into `main`, the default branch.'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'neutral', title: 'Not planned: base branch not allowed' });
    await h.receive('pull_request', pullRequestEvent('opened', a.pr));
    await a.gh.settled();

    // The same push: /apply and /approve are refused without another reply (the reply above says why).
    const [apply, approve, help] = [commentSeq++, commentSeq++, commentSeq++];
    a.gh.reaction(apply).reaction(approve).reaction(help).permission(WRITER, 'write').permission(AUTHOR, 'write').permission(WRITER, 'write').comment(10, /^\*\*Terrapin commands\*\*/);
    await comment(a, '/apply', WRITER, apply);
    await comment(a, '/approve', AUTHOR, approve);
    // Events are handled in order: /help's reply proves the two before it were handled.
    await comment(a, '/help', WRITER, help);
    await a.gh.settled();
    expect(a.gh.comments().filter((b) => b.includes('targets `loose`'))).toHaveLength(1);

    // A new push is not planned and not told again; the first command on it is told once.
    a.pr.headSha = await a.repo.commit({ 'notes.txt': 'more\n' }, { branch: 'attack' });
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'neutral', title: 'Not planned: base branch not allowed' });
    await h.receive('pull_request', pullRequestEvent('synchronize', a.pr));
    await a.gh.settled();
    const [again, twice, help2] = [commentSeq++, commentSeq++, commentSeq++];
    a.gh.reaction(again).comment(10, (b) => b.includes('targets `loose`')).reaction(twice).reaction(help2).permission(WRITER, 'write').permission(WRITER, 'write').permission(WRITER, 'write').comment(10, /^\*\*Terrapin commands\*\*/);
    await comment(a, '/apply', WRITER, again);
    await comment(a, '/apply', WRITER, twice);
    await comment(a, '/help', WRITER, help2);
    await a.gh.settled();
    expect(a.gh.comments().filter((b) => b.includes('targets `loose`'))).toHaveLength(2);
    expect((await h.status(OWNER, a.name, 10)).plan).toBeUndefined();
    await nothingApplied(a);
  });

  test('a PR merged into a branch other than the default branch queues no deploy (even where the operator lets PRs target it)', async () => {
    h.config.operatorPolicy.repositories.push({ match: [`${OWNER}/sec-release`], allowedBaseBranches: ['main', 'release'] });
    const a = await attack('sec-release', 11, { base: { branch: 'release' }, main: { '.terrapin.yml': 'defaults:\n  apply: afterMerge\n' } });
    await approvedForMerge(a);

    const mergeSha = await mergeInto(a, 'release');
    await h.receive('pull_request', pullRequestEvent('closed', a.pr, { merged: true, mergeCommitSha: mergeSha }));
    // The PR's workflow ends at once: it queued no deploy to follow (and GitHub saw no deploy comment).
    expect(await h.env.client.workflow.getHandle(prWorkflowId(OWNER, a.name, 11)).result()).toMatchObject({ merged: true });
    await expect(h.env.client.workflow.getHandle(`deploy:${OWNER}/sec-release:default`).describe()).rejects.toThrow(/not found/i);
    expect(await readFile(a.stateFile, 'utf8')).toBe(a.stateBefore);
    a.gh.assertNoUnexpected();
  });

  test('a PR whose base changed without an event Terrapin saw, merged into another branch, queues no deploy either', async () => {
    const a = await attack('sec-retarget', 18, { main: { '.terrapin.yml': 'defaults:\n  apply: afterMerge\n' } });
    await a.repo.createBranch('release');
    await approvedForMerge(a);

    // Retargeted to `release` on GitHub (an `edited` event, which Terrapin does not act on), then merged there.
    const mergeSha = await mergeInto(a, 'release');
    await h.receive('pull_request', pullRequestEvent('closed', a.pr, { merged: true, mergeCommitSha: mergeSha }));
    expect(await h.env.client.workflow.getHandle(prWorkflowId(OWNER, a.name, 18)).result()).toMatchObject({ merged: true });
    await expect(h.env.client.workflow.getHandle(`deploy:${OWNER}/sec-retarget:default`).describe()).rejects.toThrow(/not found/i);
    expect(await readFile(a.stateFile, 'utf8')).toBe(a.stateBefore);
    a.gh.assertNoUnexpected();
  });
});

/** Plans the PR (`apply: afterMerge`) and has a writer approve it to deploy after merge. */
async function approvedForMerge(a: Awaited<ReturnType<typeof attack>>): Promise<void> {
  const n = a.pr.number;
  a.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(n, (b) => b.includes('**Terrapin plan**'))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Will apply after merge: waiting for approval' });
  await h.receive('pull_request', pullRequestEvent('opened', a.pr));
  await a.gh.settled();
  await h.waitFor(OWNER, a.name, n, (s) => s.plan?.status === 'ready');
  const id = commentSeq++;
  a.gh
    .reaction(id)
    .permission(WRITER, 'write')
    .prCommits(n)
    .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Approved: will apply after merge' })
    .comment(n, (b) => b.includes('**Approved by @bob: will apply after merge.**'));
  await comment(a, '/approve', WRITER, id);
  await a.gh.settled();
}

/** Merges the attack branch into `branch` with a merge commit, as GitHub's button does; returns its sha. */
async function mergeInto(a: Awaited<ReturnType<typeof attack>>, branch: string): Promise<string> {
  const git = (...args: string[]) => execa('git', args, { cwd: a.repo.dir, env: GIT_IDENTITY });
  await git('checkout', '-q', branch);
  await git('merge', '-q', '--no-ff', '-m', `Merge attack into ${branch}`, 'attack');
  const sha = (await git('rev-parse', 'HEAD')).stdout.trim();
  await git('checkout', '-q', 'main');
  return sha;
}

describe('env cannot set the process’s plumbing', () => {
  test('PATH, LD_PRELOAD and TF_CLI_ARGS_plan in the PR’s env → config error with file:line:col; nothing runs', async () => {
    const env = 'defaults:\n  env:\n    PATH: /tmp/evil\n    LD_PRELOAD: /tmp/evil.so\n    TF_CLI_ARGS_plan: "-var x=1"\n';
    const a = await attack('sec-env', 12, { files: { '.terrapin.yml': env } });
    const expected = [
      '.terrapin.yml:3:5: defaults.env.PATH: PATH is part of how Terrapin runs terraform, git and hooks; `env` cannot set it',
      '.terrapin.yml:4:5: defaults.env.LD_PRELOAD: LD_PRELOAD is part of how Terrapin runs terraform, git and hooks; `env` cannot set it (nor any LD_* variable)',
      '.terrapin.yml:5:5: defaults.env.TF_CLI_ARGS_plan: TF_CLI_ARGS_plan is part of how Terrapin runs terraform, git and hooks; `env` cannot set it (nor any TF_CLI_ARGS* variable)',
    ];
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(12, (b) => b.includes('`.terrapin.yml` is invalid') && expected.every((e) => b.includes(e)))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Invalid .terrapin.yml' });
    await h.receive('pull_request', pullRequestEvent('opened', a.pr));
    await a.gh.settled();
    expect(existsSync(join(h.config.dataDir, 'work', OWNER, a.name, 'pr-12', a.pr.headSha, '.terrapin'))).toBe(false);
    await nothingApplied(a);
  });

  test('the same in the default branch’s copy → the error names that copy; nothing runs', async () => {
    const a = await attack('sec-envmain', 13, { main: { '.terrapin.yml': 'defaults:\n  env:\n    LD_PRELOAD: /tmp/evil.so\n' } });
    const mainSha = (await a.repo.head('main')).slice(0, 7);
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(13, (b) => b.includes(`main@${mainSha}:.terrapin.yml:3:5: defaults.env.LD_PRELOAD: LD_PRELOAD is part of how Terrapin runs`))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Invalid .terrapin.yml' });
    await h.receive('pull_request', pullRequestEvent('opened', a.pr));
    await a.gh.settled();
    await nothingApplied(a);
  });
});

describe('a symlinked .terrapin.yml is never followed', () => {
  test('to /proc/self/environ → clear refusal; no environment text in comments, checks or history', async () => {
    const a = await attack('sec-environ', 14);
    a.pr.headSha = await commitConfigSymlink(a.repo, '/proc/self/environ');
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(14, (b) => b.includes('`.terrapin.yml:1:1: .terrapin.yml is a symbolic link; it must be a regular file (its target is not read)`'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Invalid .terrapin.yml' });
    await h.receive('pull_request', pullRequestEvent('opened', a.pr));
    await a.gh.settled();
    await nothingApplied(a);
    const written = await everythingWritten(a);
    for (const leak of ['PATH=', 'HOME=', process.env.PATH!]) expect(written).not.toContain(leak);
  });

  test('to the App’s private key file → clear refusal; the key never appears anywhere', async () => {
    const keyFile = join(tmp, 'app-private-key.pem');
    const marker = `KEY-MATERIAL-${Math.random().toString(36).slice(2)}`;
    await writeFile(keyFile, `-----BEGIN PRIVATE KEY-----\n${marker}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 });
    const a = await attack('sec-keyfile', 15);
    a.pr.headSha = await commitConfigSymlink(a.repo, keyFile);
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(15, (b) => b.includes('.terrapin.yml is a symbolic link'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Invalid .terrapin.yml' });
    await h.receive('pull_request', pullRequestEvent('opened', a.pr));
    await a.gh.settled();
    await nothingApplied(a);
    const written = await everythingWritten(a);
    for (const leak of [marker, 'BEGIN PRIVATE KEY', keyFile]) expect(written).not.toContain(leak);
  });
});

describe('operator rules bind the default branch’s copy', () => {
  test('allowHooks: false → hooks on the default branch are a config error naming the key and the rule; the hook never runs', async () => {
    h.config.operatorPolicy.repositories.push({ match: [`${OWNER}/sec-nohooks`], allowHooks: false });
    const ran = join(tmp, 'nohooks-ran');
    const a = await attack('sec-nohooks', 16, { main: { '.terrapin.yml': `defaults:\n  hooks:\n    prePlan: touch ${ran}\n` } });
    const mainSha = (await a.repo.head('main')).slice(0, 7);
    a.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(16, (b) => b.includes(`main@${mainSha}:.terrapin.yml:3:5: defaults.hooks: repository hooks are turned off by the operator (allowHooks: false; TERRAPIN_SERVER_CONFIG, rule for "acme/sec-nohooks")`))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Invalid .terrapin.yml' });
    await h.receive('pull_request', pullRequestEvent('opened', a.pr));
    await a.gh.settled();
    expect(existsSync(ran)).toBe(false);
    await nothingApplied(a);
  });
});

describe('honest PRs', () => {
  test('a PR that edits policy keys is planned under the default branch’s policy and says what takes effect after merge', async () => {
    const ran = join(tmp, 'honest-hook-ran');
    const edited = `defaults:\n  applyRequirements: [approved, mergeable]\n  hooks:\n    prePlan: touch ${ran}\n`;
    const a = await attack('sec-honest', 17, { files: { '.terrapin.yml': edited } });
    await openAndPlan(a, (b) => b.includes("Policy in this pull request's `.terrapin.yml` differs from the default branch's and **takes effect after merge**: `defaults.applyRequirements`, `defaults.hooks`."));
    // Its new hook is policy too: it runs only once merged.
    expect(existsSync(ran)).toBe(false);
    // The plan check records which reviewed commit the policy came from.
    const planCheck = a.gh.calledWith('PATCH', '/check-runs').map((c) => c.body).find((b) => b.name === CHECK_PLAN && b.status === 'completed');
    expect(planCheck?.output?.summary).toContain(`come from \`.terrapin.yml\` on \`main\` at \`${await a.repo.head('main')}\`.`);
    await nothingApplied(a);
  });
});
