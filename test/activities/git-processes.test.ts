// How selectProjects reaches git: which processes it runs (through a logging git on PATH), what it fetches
// from where, and the default branch's lookup it shares with policyAt; on real git repositories.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JOIN_LOOKUP_MS, resolveDefaultBranch, type GitDeps, type GitRunner } from '../../activities/git.ts';
import type { RunResult } from '../../activities/process.ts';
import { policyAt } from '../../activities/repo-policy.ts';
import { selectProjects } from '../../activities/select-projects.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';

const ID = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' };
const TF = 'resource "terraform_data" "app" {}\n';

let root: string;
let shim: string;
let log: string;
const savedPath = process.env.PATH;
let fixture: FixtureRepo;
let repo: RepoRef;
let prNumber = 1;
const deps = (): GitDeps => ({ dataDir: join(root, 'data'), getInstallationToken: async () => 'unused' });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-select-git-'));
  shim = join(root, 'shim');
  log = join(root, 'git.log');
  const real = (await execa('sh', ['-c', 'command -v git'])).stdout.trim();
  await mkdir(shim);
  // Logs each git command (without the `-c` settings every command carries), then runs it.
  await writeFile(join(shim, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" | sed -e 's/-c [^ ]* //g' >> '${log}'\nexec '${real}' "$@"\n`);
  await chmod(join(shim, 'git'), 0o755);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  fixture = await createFixtureRepo({ 'main.tf': TF });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  process.env.PATH = savedPath;
  await fixture.cleanup();
});

/** The git commands `fn` runs (its own only: the fixture's commands run before it). */
async function gitCommands<T>(fn: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  await writeFile(log, '');
  process.env.PATH = `${shim}:${savedPath}`;
  try {
    const result = await fn();
    return { result, commands: (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
  } finally {
    process.env.PATH = savedPath;
  }
}
const named = (commands: string[], verb: string) => commands.filter((c) => c.split(' ')[0] === verb);
const hasCommit = async (dir: string, sha: string) => (await execa('git', ['cat-file', '-e', `${sha}^{commit}`], { cwd: dir, reject: false })).exitCode === 0;

describe('selectProjects fetches', () => {
  it('the commit, the default branch head and the base in one fetch, and reads them side by side', async () => {
    const base = await fixture.head();
    const head = await fixture.commit({ 'main.tf': `${TF}# change\n` }, { branch: 'pr' });
    const main = await fixture.commit({ 'other.tf': TF }); // the default branch moved on since the PR's base
    const { result, commands } = await gitCommands(() => selectProjects({ repo, prNumber: prNumber++, cloneUrl: repo.cloneUrl, sha: head, baseSha: base }, deps()));
    expect(named(commands, 'fetch')).toHaveLength(1);
    expect(named(commands, 'fetch')[0]).toContain(`${head} ${main} ${base}`);
    for (const sha of [head, main, base]) expect(await hasCommit(result.workDir, sha)).toBe(true);
    expect(result).toMatchObject({ sha: head, policySha: main, changedFiles: ['main.tf'] });
    expect(result.projects?.map((p) => p.dir)).toEqual(['.']);
    // No ls-files: the tree's listing serves for the files and for where `.terrapin.yml` is.
    expect(named(commands, 'ls-files')).toEqual([]);
    expect(commands.length).toBeLessThanOrEqual(8);
  });

  it("a fork's URL only for the commit; the default branch head and the base from the base repository", async () => {
    const forkDir = join(root, `fork-${prNumber}`);
    await execa('git', ['clone', '-q', fixture.dir, forkDir]);
    await writeFile(join(forkDir, 'main.tf'), `${TF}# from a fork\n`);
    await execa('git', ['commit', '-q', '-am', 'fork change'], { cwd: forkDir, env: ID });
    const head = (await execa('git', ['rev-parse', 'HEAD'], { cwd: forkDir })).stdout;
    // The base repository moves on: its head and the PR's base are commits the fork never had.
    const base = await fixture.commit({ 'base.tf': TF });
    const forkUrl = pathToFileURL(forkDir).href;
    const { result, commands } = await gitCommands(() => selectProjects({ repo, prNumber: prNumber++, cloneUrl: forkUrl, sha: head, baseSha: base }, deps()));
    const fetches = named(commands, 'fetch');
    expect(fetches.filter((c) => c.includes(forkUrl))).toEqual([expect.stringMatching(new RegExp(` -- ${forkUrl} ${head}$`))]);
    expect(fetches.filter((c) => c.includes(repo.cloneUrl))).toEqual([expect.stringMatching(new RegExp(` -- ${repo.cloneUrl} ${base}$`))]);
    expect(result).toMatchObject({ policySha: base, changedFiles: ['base.tf', 'main.tf'] });
    await rm(forkDir, { recursive: true, force: true });
  });

  it('a base that cannot be fetched: the commit and the policy still come, and every project counts as changed', async () => {
    const head = await fixture.commit({ 'main.tf': `${TF}# change\n` }, { branch: 'pr' });
    const r = await selectProjects({ repo, prNumber: prNumber++, cloneUrl: repo.cloneUrl, sha: head, baseSha: 'a'.repeat(40) }, deps());
    expect(r).toMatchObject({ sha: head, policySha: await fixture.head(), changedFiles: undefined });
    expect(r.projects?.map((p) => p.dir)).toEqual(['.']);
  });

  it('into a work dir used again, only what it lacks; a file named like a revision fools nothing', async () => {
    const first = await fixture.head();
    const second = await fixture.commit({ 'b.tf': TF });
    // The PR's tree holds a file named as the check for `first` in it would be.
    const head = await fixture.commit({ 'main.tf': `${TF}# change\n`, [`${first}^{commit}`]: 'x\n' }, { branch: 'pr' });
    const n = prNumber++;
    const select = (baseSha?: string) => selectProjects({ repo, prNumber: n, cloneUrl: repo.cloneUrl, sha: head, ...(baseSha ? { baseSha } : {}) }, deps());
    await select(second);
    const again = await gitCommands(() => select(second));
    expect(named(again.commands, 'fetch')).toEqual([]);
    expect(again.result.changedFiles?.sort()).toEqual(['main.tf', `${first}^{commit}`].sort());
    const older = await gitCommands(() => select(first));
    expect(named(older.commands, 'fetch')).toEqual([expect.stringMatching(new RegExp(` -- ${repo.cloneUrl} ${first}$`))]);
    expect(older.result.changedFiles?.sort()).toEqual(['b.tf', 'main.tf', `${first}^{commit}`].sort());
  });

  it('reads `.terrapin.yml` once when the PR leaves it as the default branch has it', async () => {
    await fixture.commit({ '.terrapin.yml': 'onFailure: none\n' });
    const base = await fixture.head();
    const head = await fixture.commit({ 'main.tf': `${TF}# change\n` }, { branch: 'pr' });
    const { result, commands } = await gitCommands(() => selectProjects({ repo, prNumber: prNumber++, cloneUrl: repo.cloneUrl, sha: head, baseSha: base }, deps()));
    expect(result).toMatchObject({ onFailure: 'none', policyChanges: [] });
    expect(named(commands, 'cat-file')).toEqual([expect.stringMatching(/^cat-file blob /)]);
  });

  it("the default branch's head, checked out (a drift check), costs one lookup", async () => {
    const { result, commands } = await gitCommands(() => selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, branch: 'HEAD', listProjects: true }, deps()));
    expect(result).toMatchObject({ sha: await fixture.head(), policySha: await fixture.head(), defaultBranch: 'main' });
    expect(named(commands, 'ls-remote')).toHaveLength(1);
  });

  it("joins policyAt's lookup of the default branch when a plan asks both at once", async () => {
    const head = await fixture.commit({ 'main.tf': `${TF}# change\n` }, { branch: 'pr' });
    const pr = { baseBranch: 'main', labels: [] };
    await policyAt({ repo, prNumber, pr }, deps()); // as after a repository's first PR: its mirror is there
    const { result, commands } = await gitCommands(() =>
      Promise.all([policyAt({ repo, prNumber: prNumber, pr }, deps()), selectProjects({ repo, prNumber: prNumber++, cloneUrl: repo.cloneUrl, sha: head, pr }, deps())]),
    );
    expect(named(commands, 'ls-remote')).toHaveLength(1);
    expect(result[0].sha).toBe(result[1].policySha);
  });
});

describe('resolveDefaultBranch shared by installation', () => {
  const ok = (sha: string): RunResult => ({ exitCode: 0, stdout: `ref: refs/heads/main\tHEAD\n${sha}\tHEAD`, output: '' });
  /** A git whose ls-remote answers, in order, with `answers`, each when its call is released. */
  function fakeGit(answers: RunResult[]) {
    const calls: Array<() => void> = [];
    const git: GitRunner = () =>
      new Promise((resolve) => {
        const answer = answers[calls.length]!;
        calls.push(() => resolve(answer));
      });
    return { git, calls, releaseAll: () => calls.forEach((release) => release()) };
  }
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);

  it('a lookup under way is joined; a finished one is never reused', async () => {
    const { git, calls, releaseAll } = fakeGit([ok(A), ok(B)]);
    const first = resolveDefaultBranch(git, root, 'file:///r', '1');
    const joined = resolveDefaultBranch(git, root, 'file:///r', '1');
    expect(calls).toHaveLength(1);
    releaseAll();
    expect(await Promise.all([first, joined])).toEqual([
      { sha: A, branch: 'main' },
      { sha: A, branch: 'main' },
    ]);
    const later = resolveDefaultBranch(git, root, 'file:///r', '1');
    expect(calls).toHaveLength(2);
    releaseAll();
    expect(await later).toEqual({ sha: B, branch: 'main' });
  });

  it('another installation, another URL, or no share: a lookup of its own', async () => {
    const { git, calls, releaseAll } = fakeGit([ok(A), ok(A), ok(A), ok(A)]);
    const all = [
      resolveDefaultBranch(git, root, 'file:///r', '1'),
      resolveDefaultBranch(git, root, 'file:///r', '2'),
      resolveDefaultBranch(git, root, 'file:///other', '1'),
      resolveDefaultBranch(git, root, 'file:///r'),
    ];
    expect(calls).toHaveLength(4);
    releaseAll();
    await Promise.all(all);
  });

  it('a lookup begun too long ago is not joined', async () => {
    const { git, calls, releaseAll } = fakeGit([ok(A), ok(B)]);
    const slow = resolveDefaultBranch(git, root, 'file:///r', '1');
    await new Promise((resolve) => setTimeout(resolve, JOIN_LOOKUP_MS + 50));
    const fresh = resolveDefaultBranch(git, root, 'file:///r', '1');
    expect(calls).toHaveLength(2);
    releaseAll();
    expect((await fresh).sha).toBe(B);
    expect((await slow).sha).toBe(A);
  });

  it("the joined lookup's failure is not the joiner's: it asks itself", async () => {
    const failed: RunResult = { exitCode: 128, stdout: '', output: 'fatal: unable to access' };
    const { git, calls } = fakeGit([failed, ok(B)]);
    const first = resolveDefaultBranch(git, root, 'file:///r', '1');
    const joined = resolveDefaultBranch(git, root, 'file:///r', '1');
    calls[0]!();
    await expect(first).rejects.toMatchObject({ type: 'GitFailed' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(2);
    calls[1]!();
    expect((await joined).sha).toBe(B);
  });

  it('a joiner whose activity is cancelled stops waiting', async () => {
    const { git, calls, releaseAll } = fakeGit([ok(A)]);
    const first = resolveDefaultBranch(git, root, 'file:///r', '1');
    const env = new MockActivityEnvironment();
    const joined = env.run(() => resolveDefaultBranch(git, root, 'file:///r', '1'));
    env.cancel();
    await expect(joined).rejects.toBeInstanceOf(CancelledFailure);
    expect(calls).toHaveLength(1);
    releaseAll();
    expect((await first).sha).toBe(A);
  });
});
