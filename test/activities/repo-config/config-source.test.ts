// Where the selectProjects activity reads `.terrapin.yml`: from git objects only (a regular blob under the size
// cap, never a symlink or submodule), its description at the commit and its policy at the default branch
// of the base repository, on real git repositories.
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { GitDeps } from '../../../activities/git.ts';
import { CONFIG_SIZE_LIMIT } from '../../../activities/repo-files.ts';
import { selectProjects } from '../../../activities/select-projects.ts';
import { createFixtureRepo, type FixtureRepo } from '../../helpers/fixture-repo.ts';
import type { RepoRef } from '../../../shared/contracts.ts';

const ID = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' };
const APPROVED = { kind: 'approved', count: 1, users: [], teams: [] };

let root: string;
const fixtures: FixtureRepo[] = [];
const deps = (): GitDeps => ({ dataDir: join(root, 'data'), getInstallationToken: async () => 'unused' });
const repoOf = (r: FixtureRepo, name = 'infra'): RepoRef => ({ owner: 'acme', name, installationId: 1, cloneUrl: r.cloneUrl });
let prNumber = 1;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-config-source-'));
});
afterAll(async () => {
  for (const f of fixtures) await f.cleanup();
  await rm(root, { recursive: true, force: true });
});

async function fixture(files: Record<string, string> = { 'main.tf': '' }): Promise<FixtureRepo> {
  const f = await createFixtureRepo(files);
  fixtures.push(f);
  return f;
}

/** Commits on branch `pr` whatever `prepare` does to the work tree (symlinks, gitlinks: what fixture commits cannot write). */
async function commitRaw(f: FixtureRepo, prepare: (git: (...args: string[]) => Promise<string>) => Promise<void>): Promise<string> {
  const git = async (...args: string[]) => (await execa('git', args, { cwd: f.dir, env: ID })).stdout.trim();
  await git('checkout', '-q', '-B', 'pr');
  try {
    await prepare(git);
    await git('commit', '-q', '-m', 'raw');
    return await git('rev-parse', 'HEAD');
  } finally {
    await git('checkout', '-q', '-f', 'main');
  }
}

const run = (f: FixtureRepo, input: Partial<Parameters<typeof selectProjects>[0]> & { sha: string }) =>
  selectProjects({ repo: repoOf(f), prNumber: prNumber++, cloneUrl: f.cloneUrl, ...input }, deps());

describe('only a regular file under the size cap is read', () => {
  test('a symbolic link is refused by name; its target is never read', async () => {
    const f = await fixture();
    const secret = join(root, 'secret.pem');
    await writeFile(secret, 'projects: SECRET-KEY-MATERIAL\n');
    const sha = await commitRaw(f, async (git) => {
      await symlink(secret, join(f.dir, '.terrapin.yml'));
      await git('add', '.terrapin.yml');
    });
    const r = await run(f, { sha });
    expect(r.configErrors).toEqual(['.terrapin.yml:1:1: .terrapin.yml is a symbolic link; it must be a regular file (its target is not read)']);
    expect(JSON.stringify(r)).not.toContain('SECRET-KEY-MATERIAL');
  });

  test('a submodule and a directory are refused', async () => {
    const f = await fixture();
    const sub = await commitRaw(f, (git) => git('update-index', '--add', '--cacheinfo', `160000,${'1'.repeat(40)},.terrapin.yml`).then(() => undefined));
    expect((await run(f, { sha: sub })).configErrors).toEqual(['.terrapin.yml:1:1: .terrapin.yml must be a regular file, not a submodule']);
    const dirSha = await f.commit({ '.terrapin.yml/projects.yml': 'x\n' }, { branch: 'dir' });
    expect((await run(f, { sha: dirSha })).configErrors).toEqual(['.terrapin.yml:1:1: .terrapin.yml must be a regular file, not a directory']);
  });

  test(`a file over ${CONFIG_SIZE_LIMIT} bytes is refused unread; an executable regular file is read`, async () => {
    const f = await fixture();
    const big = await f.commit({ '.terrapin.yml': `# ${'x'.repeat(CONFIG_SIZE_LIMIT)}\n` }, { branch: 'big' });
    expect((await run(f, { sha: big })).configErrors).toEqual([`.terrapin.yml:1:1: .terrapin.yml is ${CONFIG_SIZE_LIMIT + 3} bytes; at most ${CONFIG_SIZE_LIMIT} are read`]);
    const exec = await commitRaw(f, async (git) => {
      await writeFile(join(f.dir, '.terrapin.yml'), 'onFailure: none\n', { mode: 0o755 });
      await git('add', '.terrapin.yml');
    });
    const r = await run(f, { sha: exec, policyFrom: 'commit' });
    expect({ errors: r.configErrors, onFailure: r.onFailure }).toEqual({ errors: undefined, onFailure: 'none' });
  });
});

describe('the same refusals when the whole tree is listed (a PR compared with its base)', () => {
  test('a symbolic link, a submodule, a directory and a file over the cap; a regular file is read', async () => {
    const f = await fixture();
    const base = await f.head();
    const secret = join(root, 'listed-secret.pem');
    await writeFile(secret, 'projects: SECRET-KEY-MATERIAL\n');
    const link = await commitRaw(f, async (git) => {
      await symlink(secret, join(f.dir, '.terrapin.yml'));
      await git('add', '.terrapin.yml');
    });
    const sub = await commitRaw(f, (git) => git('update-index', '--add', '--cacheinfo', `160000,${'1'.repeat(40)},.terrapin.yml`).then(() => undefined));
    const dir = await f.commit({ '.terrapin.yml/projects.yml': 'x\n' }, { branch: 'listed-dir' });
    const big = await f.commit({ '.terrapin.yml': `# ${'x'.repeat(CONFIG_SIZE_LIMIT)}\n` }, { branch: 'listed-big' });
    const fine = await f.commit({ '.terrapin.yml': 'onFailure: none\n' }, { branch: 'listed-fine' });
    const listed = (sha: string) => run(f, { sha, baseSha: base, policyFrom: 'commit' });
    const linked = await listed(link);
    expect(linked.configErrors).toEqual(['.terrapin.yml:1:1: .terrapin.yml is a symbolic link; it must be a regular file (its target is not read)']);
    expect(JSON.stringify(linked)).not.toContain('SECRET-KEY-MATERIAL');
    expect((await listed(sub)).configErrors).toEqual(['.terrapin.yml:1:1: .terrapin.yml must be a regular file, not a submodule']);
    expect((await listed(dir)).configErrors).toEqual(['.terrapin.yml:1:1: .terrapin.yml must be a regular file, not a directory']);
    expect((await listed(big)).configErrors).toEqual([`.terrapin.yml:1:1: .terrapin.yml is ${CONFIG_SIZE_LIMIT + 3} bytes; at most ${CONFIG_SIZE_LIMIT} are read`]);
    const read = await listed(fine);
    expect({ errors: read.configErrors, onFailure: read.onFailure, changed: read.changedFiles }).toEqual({ errors: undefined, onFailure: 'none', changed: ['.terrapin.yml'] });
  });

  test('a PR that changes `.terrapin.yml` against a default branch with a big one: each copy by its own size', async () => {
    const f = await fixture({ 'main.tf': '', '.terrapin.yml': `# ${'x'.repeat(CONFIG_SIZE_LIMIT)}\n` });
    const base = await f.head();
    const sha = await f.commit({ '.terrapin.yml': 'onFailure: none\n' }, { branch: 'shrink' });
    const r = await run(f, { sha, baseSha: base, pr: { baseBranch: 'main', labels: [] } });
    expect(r.configErrors).toEqual([`main@${base.slice(0, 7)}:.terrapin.yml:1:1: .terrapin.yml is ${CONFIG_SIZE_LIMIT + 3} bytes; at most ${CONFIG_SIZE_LIMIT} are read`]);
  });
});

describe('policy comes from the default branch of the base repository', () => {
  test('a PR head: description from the head, policy from main; the source commit and the changes are reported', async () => {
    const f = await fixture({ 'app/main.tf': '', '.terrapin.yml': 'defaults:\n  onFailure: none\n' });
    const main = await f.head();
    const head = await f.commit({ '.terrapin.yml': 'defaults:\n  applyRequirements: []\n  hooks: { prePlan: ./evil.sh }\nprojects:\n  - name: app\n    dir: app\n    workspace: blue\n' }, { branch: 'feature' });
    const r = await run(f, { sha: head, baseSha: main, pr: { baseBranch: 'main', labels: [] } });
    expect(r.configErrors).toBeUndefined();
    expect({ policySha: r.policySha, defaultBranch: r.defaultBranch, baseAllowed: r.baseAllowed, allowed: r.allowedBaseBranches }).toEqual({
      policySha: main,
      defaultBranch: 'main',
      baseAllowed: true,
      allowed: ['main'],
    });
    expect(r.allProjects).toMatchObject([{ name: 'app', dir: 'app', workspace: 'blue', applyRequirements: [APPROVED], hooks: { prePlan: [] }, onFailure: 'none' }]);
    expect(r.policyChanges).toEqual(['defaults.applyRequirements', 'defaults.onFailure', 'defaults.hooks']);
  });

  test('a fork: the fork’s own default branch counts for nothing', async () => {
    const base = await fixture({ 'main.tf': '', '.terrapin.yml': 'permissions:\n  approve: { users: [carol] }\n' });
    const forkDir = await mkdtemp(join(root, 'fork-'));
    await execa('git', ['clone', '-q', base.dir, forkDir]);
    const forkGit = (...args: string[]) => execa('git', args, { cwd: forkDir, env: ID });
    await writeFile(join(forkDir, '.terrapin.yml'), 'allowForks: true\npermissions:\n  approve: { allowAuthor: true }\ndefaults:\n  applyRequirements: []\n');
    await forkGit('commit', '-q', '-am', 'loosen on the fork default branch');
    const head = (await forkGit('rev-parse', 'HEAD')).stdout.trim();
    const r = await selectProjects({ repo: repoOf(base), prNumber: prNumber++, cloneUrl: pathToFileURL(forkDir).href, sha: head, listProjects: true }, deps());
    expect(r.policySha).toBe(await base.head());
    expect({ allowForks: r.allowForks, approve: r.permissions?.approve }).toEqual({ allowForks: false, approve: { level: 'write', users: ['carol'], teams: [], allowAuthor: false } });
    expect(r.allProjects?.[0]?.applyRequirements).toEqual([APPROVED]);
  });

  test('the base branch: only the default branch unless the operator allows more', async () => {
    const f = await fixture();
    const sha = await f.commit({ 'main.tf': '# change\n' }, { branch: 'feature' });
    expect((await run(f, { sha, pr: { baseBranch: 'loose', labels: [] } })).baseAllowed).toBe(false);
    const open = { ...deps(), operatorPolicy: { repositories: [{ match: ['acme/*'], allowedBaseBranches: ['release/*'] }], runner: { sandbox: 'auto' as const, paths: [] } } };
    const r = await selectProjects({ repo: repoOf(f), prNumber: prNumber++, cloneUrl: f.cloneUrl, sha, pr: { baseBranch: 'release/2', labels: [] } }, open);
    expect({ allowed: r.baseAllowed, globs: r.allowedBaseBranches }).toEqual({ allowed: true, globs: ['release/*'] });
  });

  test('errors in the default branch’s copy name it by branch and commit', async () => {
    const f = await fixture({ 'main.tf': '', '.terrapin.yml': 'defaults:\n  lock: sometimes\n' });
    const sha = await f.commit({ '.terrapin.yml': 'defaults:\n  lock: onPlan\n' }, { branch: 'fix' });
    const r = await run(f, { sha, pr: { baseBranch: 'main', labels: [] } });
    expect(r.configErrors).toEqual([`main@${(await f.head()).slice(0, 7)}:.terrapin.yml:2:9: defaults.lock: must be one of "onPlan", "onApply", "off", got "sometimes"`]);
  });

  test('policyFrom commit: a commit already on the default branch is its own policy (a merge’s first parent)', async () => {
    const f = await fixture({ 'main.tf': '', '.terrapin.yml': 'permissions:\n  approve: { users: [dave] }\n' });
    const before = await f.head();
    await f.commit({ '.terrapin.yml': 'permissions:\n  approve: { users: [mallory] }\n' });
    const r = await run(f, { sha: before, policyFrom: 'commit' });
    expect({ policySha: r.policySha, users: r.permissions?.approve.users }).toEqual({ policySha: before, users: ['dave'] });
  });
});
