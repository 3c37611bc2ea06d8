// Issue 9, sections 2 and 3: nothing from a PR escapes its checkout, and terraform and hooks cannot reach the
// bot's secrets or other repositories. Every attack is a real PR (a real commit in a fixture repo, delivered
// as a pull_request or issue_comment webhook) planned by the real worker with real terraform in the real
// sandbox. Each asserts the planted secrets appear in no comment, check run, workflow history or file the
// bot wrote under the data dir, and that nothing was applied.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

/** A PR's checkout is its head merged into the base: the work dir `<head>+<base>` under the PR's root. */
function mergedWorkDir(prRoot: string, headSha: string): string {
  const name = readdirSync(prRoot).find((n) => n.startsWith(`${headSha}+`) && !n.endsWith('.terrapin'));
  if (!name) throw new Error(`no work dir of ${headSha} in ${prRoot}`);
  return join(prRoot, name);
}

const OWNER = 'acme';
const AUTHOR = 'mallory';
const WRITER = 'bob';

/** What the attacks are after. None of these may show up anywhere the PR (or anyone) can read. */
const KEY_MARKER = 'TERRAPIN-APP-PRIVATE-KEY-MARKER-0b7e41';
const WORKER_ENV_MARKER = 'TERRAPIN-WORKER-ENV-MARKER-5c29d8';
const WEBHOOK_SECRET_MARKER = 'TERRAPIN-WEBHOOK-SECRET-MARKER-a1f3';
const DOTENV_MARKER = 'TERRAPIN-DOTENV-MARKER-77e0c2';
const TEMPORAL_MARKER = 'TERRAPIN-TEMPORAL-DATA-MARKER-3d9b';
const OTHER_REPO_MARKER = 'TERRAPIN-OTHER-REPO-MARKER-e4c1';
const OTHER_PR_MARKER = 'TERRAPIN-OTHER-PR-MARKER-9a02';
const SECRETS = [KEY_MARKER, WORKER_ENV_MARKER, WEBHOOK_SECRET_MARKER, DOTENV_MARKER, TEMPORAL_MARKER, OTHER_REPO_MARKER, OTHER_PR_MARKER];

let h: Harness;
let tmp: string;
let keyFile: string;
let workerCwd: string;
let originalCwd: string;
/** A stand-in for the bot's process whose environment and argv hold a secret from its start (/proc/<pid>/environ shows the start's). */
let standIn: ChildProcess;
const repos: FixtureRepo[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  h = await startHarness();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-security-'));
  // The fixtures' local state files live here, outside every checkout: the operator lists it in runner.paths.
  h.allowRunnerPath(join(tmp, 'states'));
  await mkdir(join(tmp, 'states'));
  // The App's key beside the work dirs, inside the data dir: the sandbox mounts dirs below it, never it.
  keyFile = join(h.config.dataDir, 'secrets', 'app.pem');
  await mkdir(join(h.config.dataDir, 'secrets'), { mode: 0o700 });
  await writeFile(keyFile, `-----BEGIN PRIVATE KEY-----\n${KEY_MARKER}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 });
  // Embedded Temporal's data.
  await mkdir(join(h.config.dataDir, 'temporal'));
  await writeFile(join(h.config.dataDir, 'temporal', 'terrapin.db'), TEMPORAL_MARKER);
  // The worker's cwd holds the .env the App's credentials were loaded from.
  workerCwd = await mkdtemp(join(tmpdir(), 'terrapin-security-cwd-'));
  await writeFile(join(workerCwd, '.env'), `WEBHOOK_SECRET=${DOTENV_MARKER}\n`, { mode: 0o600 });
  originalCwd = process.cwd();
  process.chdir(workerCwd);
  process.env.PRIVATE_KEY_PATH = keyFile;
  process.env.WEBHOOK_SECRET = WEBHOOK_SECRET_MARKER;
  process.env.TERRAPIN_TEST_WORKER_SECRET = WORKER_ENV_MARKER;
  standIn = spawn('sh', ['-c', 'sleep 600; : "$0"', WORKER_ENV_MARKER], { env: { PATH: process.env.PATH, WEBHOOK_SECRET: WORKER_ENV_MARKER }, stdio: 'ignore' });
  await h.startWorker();
});

afterAll(async () => {
  standIn?.kill('SIGKILL');
  if (originalCwd) process.chdir(originalCwd);
  process.env = { ...savedEnv };
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  for (const dir of [tmp, workerCwd]) if (dir) await rm(dir, { recursive: true, force: true });
});

interface Attack {
  pr: TestPr;
  repo: FixtureRepo;
  stateFile: string;
  gh: GithubMock;
}

/** Commits symlinks (path → target) on a branch of the fixture repo. */
async function commitSymlinks(repo: FixtureRepo, branch: string, links: Record<string, string>): Promise<string> {
  const git = (...args: string[]) => execa('git', args, { cwd: repo.dir, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t.invalid' } });
  await git('checkout', '-q', branch);
  try {
    for (const [path, target] of Object.entries(links)) {
      await mkdir(join(repo.dir, path, '..'), { recursive: true });
      await symlink(target, join(repo.dir, path));
    }
    await git('add', '-A');
    await git('commit', '-q', '-m', 'symlinks');
    return (await git('rev-parse', 'HEAD')).stdout.trim();
  } finally {
    await git('checkout', '-q', 'main');
  }
}

/** A repository with resource `a` on main, and a PR whose head adds `files` (and `links`, as symlinks). */
async function attackPr(name: string, number: number, files: Record<string, string>, opts: { base?: Record<string, string>; links?: Record<string, string> } = {}): Promise<Attack> {
  const stateFile = join(tmp, 'states', `${name}.tfstate`);
  const main = terraformFixture({ stateFile, resources: { a: { input: 'base' } } });
  const repo = await createFixtureRepo({ 'main.tf': main, ...opts.base });
  repos.push(repo);
  let headSha = await repo.commit(files, { branch: 'feature' });
  if (opts.links) headSha = await commitSymlinks(repo, 'feature', opts.links);
  const pr: TestPr = { owner: OWNER, repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head('main'), author: AUTHOR };
  return { pr, repo, stateFile, gh: new GithubMock(OWNER, name) };
}

function expectPlanned(a: Attack, body: (b: string) => boolean = () => true): void {
  a.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(a.pr.number, (b) => b.includes('**Terrapin plan**') && body(b))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
}

function expectPlanFailed(a: Attack, body: (b: string) => boolean): void {
  a.gh
    .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(a.pr.number, (b) => /plan failed/i.test(b) && body(b))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
}

async function open(a: Attack): Promise<void> {
  await h.receive('pull_request', pullRequestEvent('opened', a.pr));
  await a.gh.settled(60_000);
}

/** Every text under `dir` (files the bot and terraform wrote: logs, plan JSON and text, outputs, .terraform). */
async function filesUnder(dir: string): Promise<Array<[string, string]>> {
  if (!existsSync(dir)) return [];
  const out: Array<[string, string]> = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile() || path.includes('/.git/') || path.includes('/providers/')) continue;
    if ((await stat(path)).size > 5_000_000) continue;
    out.push([path, await readFile(path, 'latin1')]);
  }
  return out;
}

/** The workflow's history with every payload decoded: what Temporal stores and its UI shows. */
async function historyText(a: Attack): Promise<string> {
  const history = await h.env.client.workflow.getHandle(prWorkflowId(OWNER, a.pr.repo, a.pr.number)).fetchHistory();
  const parts: string[] = [];
  const walk = (v: unknown) => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    else if (typeof v === 'string') parts.push(v);
  };
  walk(history);
  return parts.join('\n');
}

/** No secret (nor its base64) in any comment, check run, the history, or a file under this repository's work dirs; nothing applied. */
async function assertNothingLeaked(a: Attack, secrets: readonly string[] = SECRETS): Promise<void> {
  const forms = secrets.flatMap((s) => [s, Buffer.from(s).toString('base64'), Buffer.from(s).toString('base64').slice(0, 24)]);
  const places: Array<[string, string]> = [
    ...a.gh.comments().map((c, i): [string, string] => [`comment ${i}`, c]),
    ['GitHub calls (check runs)', JSON.stringify(a.gh.calls)],
    ['workflow history', await historyText(a)],
    ...(await filesUnder(join(h.config.dataDir, 'work', OWNER, a.pr.repo))),
    ...(await filesUnder(join(h.config.dataDir, 'deploys'))),
  ];
  expect(places.length).toBeGreaterThan(3);
  for (const [where, text] of places) for (const form of forms) expect(text.includes(form), `${form} found in ${where}`).toBe(false);
  // Nothing applied: the state file was never written, and the PR has no applied plan.
  expect(existsSync(a.stateFile)).toBe(false);
  const status = await h.status(OWNER, a.pr.repo, a.pr.number);
  expect(status.plan?.status).not.toBe('applied');
  a.gh.assertNoUnexpected();
}

const planComment = (a: Attack) => a.gh.comments().at(-1) ?? '';
/** The plan comment shows the output `name` planned with exactly `value` (`+   name = value` in its diff block). */
const output = (body: string, name: string, value: string) => new RegExp(`^\\+\\s+${name}\\s+= ${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm').test(body);
const hcl = (value: string) => JSON.stringify(value);

describe('terraform functions cannot read the bot\'s secrets', () => {
  test('file("/proc/self/environ") and file("/proc/1/environ") show only the sandbox\'s own minimal environment', async () => {
    const a = await attackPr('procself', 1, {
      'attack.tf': 'output "self_env" {\n  value = file("/proc/self/environ")\n}\noutput "init_env" {\n  value = file("/proc/1/environ")\n}\noutput "init_cmd" {\n  value = file("/proc/1/cmdline")\n}\n',
    });
    expectPlanned(a, (b) => b.includes('self_env') && b.includes('TF_DATA_DIR'));
    await open(a);
    // terraform's environment: the sandbox's HOME and TF_* settings, none of the worker's.
    expect(planComment(a)).toMatch(/HOME=[^\n"]*\.terrapin\/root--default--p1\/run\/home/);
    await assertNothingLeaked(a);
  });

  test("a loop over /proc/<pid>/environ and cmdline of the worker's pid and its neighbours finds nothing", async () => {
    const pids = [process.pid, process.ppid, standIn.pid!, 1, 2, 3];
    const list = JSON.stringify(pids.map(String));
    const a = await attackPr('procloop', 2, {
      'attack.tf': `output "worker_env" {\n  value = [for p in ${list} : try(file("/proc/\${p}/environ"), "invisible")]\n}\noutput "worker_cmd" {\n  value = [for p in ${list} : try(file("/proc/\${p}/cmdline"), "invisible")]\n}\n`,
    });
    expectPlanned(a, (b) => b.includes('worker_env') && b.includes('"invisible"'));
    await open(a);
    // The stand-in's secret is in its own environ and argv on the host; from the sandbox its pid does not exist.
    expect(await readFile(`/proc/${standIn.pid}/cmdline`, 'utf8')).toContain(WORKER_ENV_MARKER);
    await assertNothingLeaked(a);
  });

  test('file(PRIVATE_KEY_PATH) fails the plan cleanly: the key is not there', async () => {
    const a = await attackPr('keyfile', 3, { 'attack.tf': `output "key" {\n  value = file(${hcl(keyFile)})\n}\n` });
    expectPlanFailed(a, (b) => b.includes('no file exists') || b.includes('Invalid value for "path" parameter'));
    await open(a);
    await assertNothingLeaked(a);
  });

  test('base64encode(file(key)) fails the same way, and the base64 of the key appears nowhere', async () => {
    const a = await attackPr('keyb64', 4, { 'attack.tf': `output "key" {\n  value = base64encode(file(${hcl(keyFile)}))\n}\n` });
    expectPlanFailed(a, (b) => b.includes('Invalid value for "path" parameter') || b.includes('no file exists'));
    await open(a);
    await assertNothingLeaked(a);
  });

  test("fileset over the data dir lists no Temporal data, no key and no other repository; file() of Temporal's database fails", async () => {
    const dataDir = h.config.dataDir;
    const a = await attackPr('datadir', 5, {
      'attack.tf': [
        `output "temporal" {\n  value = fileset(${hcl(dataDir)}, "temporal/**")\n}`,
        `output "secrets" {\n  value = fileset(${hcl(dataDir)}, "secrets/**")\n}`,
        `output "work" {\n  value = fileset(${hcl(join(dataDir, 'work'))}, "*/*/*/*/*.tf")\n}`,
        `output "db" {\n  value = try(file(${hcl(join(dataDir, 'temporal', 'terrapin.db'))}), "invisible")\n}`,
      ].join('\n'),
    });
    expectPlanned(a, (b) => output(b, 'temporal', '[]') && output(b, 'secrets', '[]') && output(b, 'db', '"invisible"'));
    await open(a);
    // Of every repository's work dirs, only this PR's own checkout is there at all.
    const listed = [...planComment(a).matchAll(/"(acme\/[^"]+)"/g)].map((m) => m[1]);
    const own = mergedWorkDir(join(dataDir, 'work', OWNER, 'datadir', 'pr-5'), a.pr.headSha).slice(join(dataDir, 'work').length + 1);
    expect(listed).toEqual([`${own}/attack.tf`, `${own}/main.tf`]);
    await assertNothingLeaked(a);
  });
});

describe('other repositories and other pull requests', () => {
  test("a PR in repository B cannot read repository A's checkout, plan, plan JSON or state by absolute path", async () => {
    // Repository A plans first: its code, plan JSON and plan text hold its secret.
    const victim = await attackPr('victim-a', 6, { 'secret.tf': `resource "terraform_data" "s" {\n  input = ${hcl(OTHER_REPO_MARKER)}\n}\n` });
    expectPlanned(victim, (b) => b.includes(OTHER_REPO_MARKER));
    await open(victim);
    const victimRoot = join(h.config.dataDir, 'work', OWNER, 'victim-a', 'pr-6');
    const victimCheckout = mergedWorkDir(victimRoot, victim.pr.headSha);
    const victimPlanJson = join(`${victimCheckout}.terrapin`, 'root--default--p1', 'plan.json');
    expect(await readFile(victimPlanJson, 'utf8')).toContain(OTHER_REPO_MARKER);

    const b = await attackPr('thief-b', 7, {
      'attack.tf': [
        `output "code" {\n  value = try(file(${hcl(join(victimCheckout, 'secret.tf'))}), "invisible")\n}`,
        `output "plan_json" {\n  value = try(file(${hcl(victimPlanJson)}), "invisible")\n}`,
        `output "listing" {\n  value = fileset(${hcl(victimRoot)}, "**")\n}`,
      ].join('\n'),
    });
    expectPlanned(b, (body) => output(body, 'code', '"invisible"') && output(body, 'plan_json', '"invisible"') && output(body, 'listing', '[]'));
    await open(b);
    await assertNothingLeaked(b);
  });

  test('a PR cannot read another PR of the same repository', async () => {
    const first = await attackPr('samerepo', 8, { 'secret.tf': `resource "terraform_data" "s" {\n  input = ${hcl(OTHER_PR_MARKER)}\n}\n` });
    expectPlanned(first, (b) => b.includes(OTHER_PR_MARKER));
    await open(first);
    const firstCheckout = mergedWorkDir(join(h.config.dataDir, 'work', OWNER, 'samerepo', 'pr-8'), first.pr.headSha);

    // Another project dir: the first PR holds the lock on the root project.
    const otherState = join(tmp, 'states', 'samerepo-other.tfstate');
    const sha = await first.repo.commit(
      {
        'other/main.tf': terraformFixture({ stateFile: otherState, resources: { c: {} } }),
        'other/attack.tf': `output "other_pr" {\n  value = try(file(${hcl(join(firstCheckout, 'secret.tf'))}), "invisible")\n}\noutput "listing" {\n  value = fileset(${hcl(join(h.config.dataDir, 'work', OWNER, 'samerepo'))}, "*/*/*.tf")\n}\n`,
      },
      { branch: 'second' },
    );
    const second: Attack = { ...first, pr: { ...first.pr, number: 9, headSha: sha, headRef: 'second' }, gh: first.gh };
    // The listing of the repository's work dirs holds this PR's own checkout only.
    expectPlanned(second, (b) => output(b, 'other_pr', '"invisible"') && new RegExp(`"pr-9/${sha}\\+[0-9a-f]{40}/main.tf"`).test(b) && !b.includes('pr-8'));
    await open(second);
    // The second PR's own artefacts hold nothing of the first's.
    const texts = await filesUnder(join(h.config.dataDir, 'work', OWNER, 'samerepo', 'pr-9'));
    expect(texts.length).toBeGreaterThan(0);
    for (const [path, text] of texts) expect(text.includes(OTHER_PR_MARKER), path).toBe(false);
    expect(planComment(second)).not.toContain(OTHER_PR_MARKER);
    expect(await historyText(second)).not.toContain(OTHER_PR_MARKER);
    second.gh.assertNoUnexpected();
  });
});

describe('commands run by hooks', () => {
  test('a hook running env, cat /proc/*/environ, ls $HOME and cat of the worker\'s .env and the key sees none of them', async () => {
    // The hook is on the default branch too: it is reviewed code, and still runs sandboxed.
    const script = [
      'echo HOOK-RAN',
      'env',
      'cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n"',
      'cat /proc/*/cmdline 2>/dev/null | tr "\\0" " "; echo',
      'echo "HOME is $HOME"; ls -la "$HOME" /root /home 2>&1',
      `cat ${hcl(join(workerCwd, '.env'))} 2>&1`,
      `cat ${hcl(keyFile)} 2>&1`,
      `ls ${hcl(h.config.dataDir)} 2>&1`,
      'exit 1',
    ].join('; ');
    const config = `defaults:\n  hooks:\n    prePlan:\n      - ${JSON.stringify(script)}\n`;
    const a = await attackPr('hookenv', 10, { 'b.tf': 'resource "terraform_data" "b" {}\n' }, { base: { '.terrapin.yml': config } });
    expectPlanFailed(a, (b) => b.includes('HOOK-RAN') && b.includes('No such file or directory'));
    await open(a);
    expect(planComment(a)).toContain('The `prePlan` step failed');
    await assertNothingLeaked(a);
  });
});

describe('files the pull request plants', () => {
  test('a committed .terrapin symlink pointing outside does not redirect what the bot writes', async () => {
    const victimDir = join(tmp, 'redirect-target');
    await mkdir(victimDir);
    await writeFile(join(victimDir, 'keep.txt'), 'untouched');
    const a = await attackPr('dotterrapin', 11, { 'b.tf': 'resource "terraform_data" "b" {}\n' }, { links: { '.terrapin': victimDir } });
    expectPlanned(a, (b) => b.includes('terraform_data.b'));
    await open(a);
    expect((await readdir(victimDir)).sort()).toEqual(['keep.txt']);
    expect(await readFile(join(victimDir, 'keep.txt'), 'utf8')).toBe('untouched');
    await h.waitFor(OWNER, 'dotterrapin', 11, (st) => st.plan?.status === 'ready');
    // The bot's files are beside the checkout, where the PR cannot put anything.
    const checkout = mergedWorkDir(join(h.config.dataDir, 'work', OWNER, 'dotterrapin', 'pr-11'), a.pr.headSha);
    expect(existsSync(join(`${checkout}.terrapin`, 'root--default--p1', 'plan.json'))).toBe(true);
    await assertNothingLeaked(a);
  });

  test('/plan -- -var-file=link.tfvars with link.tfvars → /proc/self/environ is refused with a clear reply', async () => {
    const a = await attackPr('varfile', 12, { 'vars.tf': 'variable "x" {\n  default = ""\n}\n' }, { links: { 'link.tfvars': '/proc/self/environ' } });
    expectPlanned(a);
    await open(a);
    await h.waitFor(OWNER, 'varfile', 12, (st) => st.plan?.status === 'ready');

    a.gh
      .reaction(9101)
      .permission(WRITER, 'write')
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(12, (b) => /plan failed/i.test(b) && b.includes('-var-file=link.tfvars refused: link.tfvars is a symbolic link to a path outside the repository'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
    await h.receive('issue_comment', issueCommentEvent(a.pr, '/plan -- -var-file=link.tfvars', { login: WRITER, commentId: 9101 }));
    await a.gh.settled(60_000);
    // Refused before terraform ran: the reply holds no environment at all.
    expect(planComment(a)).not.toMatch(/PATH=|HOME=/);
    await assertNothingLeaked(a);
  });

  test('a *.tf symlinked to the App key is refused by name during project detection, its content never read', async () => {
    const a = await attackPr('tflink', 13, { 'b.tf': 'resource "terraform_data" "b" {}\n' }, { links: { 'stolen.tf': keyFile } });
    expectPlanFailed(a, (b) => b.includes('stolen.tf is a symbolic link to a path outside the repository'));
    await open(a);
    await assertNothingLeaked(a);
  });

  test('a project dir symlinked out of the repository (to the data dir) is refused, nothing there is read', async () => {
    const a = await attackPr('dirlink', 14, { '.terrapin.yml': 'projects:\n  - name: escape\n    dir: escape\n    autoplan: { whenModified: ["../escape"] }\n' }, { links: { escape: h.config.dataDir } });
    expectPlanFailed(a, (b) => b.includes('escape is a symbolic link to a path outside the repository'));
    await open(a);
    await assertNothingLeaked(a);
  });
});
