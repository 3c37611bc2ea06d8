// readFileAt on real git repositories: one file at a commit, from a bare mirror, never a work tree; and
// only a regular file under the size cap.
import { mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GitDeps } from '../../activities/git.ts';
import { CONFIG_SIZE_LIMIT, mirrorDir, readFileAt } from '../../activities/repo-files.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';

const ID = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' };

let root: string;
let fixture: FixtureRepo;
let repo: RepoRef;
const deps = (): GitDeps => ({
  dataDir: join(root, 'data'),
  getInstallationToken: async () => {
    throw new Error('no token needed for file:// URLs');
  },
});
const read = (ref: string, path = '.terrapin.yml') => readFileAt({ repo, ref, path }, deps());

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-read-file-'));
  fixture = await createFixtureRepo({ 'main.tf': '', '.terrapin.yml': 'onFailure: none\n' });
  // As GitHub does: serve partial fetches (a file:// remote ignores --filter unless told).
  await execa('git', ['config', 'uploadpack.allowFilter', 'true'], { cwd: fixture.dir });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  await fixture.cleanup();
  await rm(root, { recursive: true, force: true });
});

/** Commits on branch `pr` whatever `prepare` does to the work tree (symlinks, gitlinks: what fixture commits cannot write). */
async function commitRaw(prepare: (git: (...args: string[]) => Promise<string>) => Promise<void>): Promise<string> {
  const git = async (...args: string[]) => (await execa('git', args, { cwd: fixture.dir, env: ID })).stdout.trim();
  await git('checkout', '-q', '-B', 'pr');
  try {
    await prepare(git);
    await git('commit', '-q', '-m', 'raw');
    return await git('rev-parse', 'HEAD');
  } finally {
    await git('checkout', '-q', '-f', 'main');
  }
}

/** Is the object in the mirror itself (no lazy fetch to answer the question)? */
async function inMirror(object: string): Promise<boolean> {
  const r = await execa('git', ['cat-file', '-e', object], { cwd: mirrorDir(deps().dataDir, repo), env: { GIT_NO_LAZY_FETCH: '1' }, reject: false });
  return r.exitCode === 0;
}

describe('readFileAt', () => {
  it('reads a file at a commit and at the default branch head, from a bare mirror without a work tree', async () => {
    const first = await fixture.head();
    const big = 'x'.repeat(64 * 1024);
    const head = await fixture.commit({ '.terrapin.yml': 'onFailure: rollback\n', 'big.bin': big });
    await fixture.commit({ '.terrapin.yml': 'onFailure: branch\n' }, { branch: 'feature' });

    expect(await read(first)).toEqual({ sha: first, text: 'onFailure: none\n' });
    expect(await read('HEAD')).toEqual({ sha: head, branch: 'main', text: 'onFailure: rollback\n' });

    expect(await readdir(join(root, 'data'))).toEqual(['mirrors']);
    const mirror = mirrorDir(deps().dataDir, repo);
    expect((await execa('git', ['rev-parse', '--is-bare-repository'], { cwd: mirror })).stdout).toBe('true');
    // Not a clone: only the blob read came, not the others of the commit.
    const blobOf = async (sha: string, path: string) => (await execa('git', ['rev-parse', `${sha}:${path}`], { cwd: fixture.dir })).stdout;
    expect(await inMirror(await blobOf(head, '.terrapin.yml'))).toBe(true);
    expect(await inMirror(await blobOf(head, 'big.bin'))).toBe(false);
  });

  it('reads a commit it has again without the network', async () => {
    const sha = await fixture.head();
    const first = await read(sha);
    await fixture.cleanup();
    expect(await read(sha)).toEqual(first);
  });

  it('returns no text for a file the commit does not have', async () => {
    const sha = await fixture.head();
    expect(await read(sha, 'missing.yml')).toEqual({ sha });
    expect(await read(sha, 'no/such/dir/file.yml')).toEqual({ sha });
  });

  it('refuses a symbolic link committed in a PR, and never reads its target', async () => {
    const secret = join(root, 'secret.pem');
    await writeFile(secret, 'SECRET-KEY-MATERIAL\n');
    const sha = await commitRaw(async (git) => {
      await rm(join(fixture.dir, '.terrapin.yml'));
      await symlink(secret, join(fixture.dir, '.terrapin.yml'));
      await git('add', '-A');
    });
    const r = await read(sha);
    expect(r).toEqual({ sha, refused: '.terrapin.yml is a symbolic link; it must be a regular file (its target is not read)' });
    expect(JSON.stringify(r)).not.toContain('SECRET');
  });

  it('refuses a directory, a submodule and a file over the size limit', async () => {
    const dir = await fixture.commit({ '.terrapin.yml': null, '.terrapin.yml/x': 'x\n' }, { branch: 'dir' });
    expect((await read(dir)).refused).toBe('.terrapin.yml must be a regular file, not a directory');
    const sub = await commitRaw((git) => git('update-index', '--add', '--cacheinfo', `160000,${'1'.repeat(40)},sub`).then(() => undefined));
    expect((await read(sub, 'sub')).refused).toBe('sub must be a regular file, not a submodule');
    const big = await fixture.commit({ '.terrapin.yml': `# ${'x'.repeat(CONFIG_SIZE_LIMIT)}\n` }, { branch: 'big' });
    expect(await read(big)).toEqual({ sha: big, refused: `.terrapin.yml is ${CONFIG_SIZE_LIMIT + 3} bytes; at most ${CONFIG_SIZE_LIMIT} are read` });
  });

  it('does not follow a symlinked directory on the way to the file', async () => {
    const sha = await commitRaw(async (git) => {
      await symlink('.', join(fixture.dir, 'loop'));
      await git('add', 'loop');
    });
    expect(await read(sha, 'loop/.terrapin.yml')).toEqual({ sha });
  });

  it('takes only full commit shas or HEAD, and only plain relative paths', async () => {
    const sha = await fixture.head();
    for (const ref of ['main', sha.slice(0, 12), `${sha}^`]) {
      await expect(read(ref)).rejects.toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    }
    for (const path of ['../etc/passwd', '/etc/passwd', 'a//b', './.terrapin.yml', 'dir/', '']) {
      await expect(read(sha, path)).rejects.toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    }
  });

  it('fails without retry for a commit the repository does not have', async () => {
    await expect(read('a'.repeat(40))).rejects.toMatchObject({ type: 'CommitNotFound', nonRetryable: true });
  });

  it('serves concurrent reads of one repository from one mirror', async () => {
    const shas = [await fixture.head()];
    for (const n of [1, 2, 3]) shas.push(await fixture.commit({ '.terrapin.yml': `# ${n}\n` }));
    const texts = await Promise.all(shas.map((sha) => read(sha).then((r) => r.text)));
    expect(texts).toEqual(['onFailure: none\n', '# 1\n', '# 2\n', '# 3\n']);
  });
});
