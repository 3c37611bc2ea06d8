// Where a local run's terraform runs: the user's own directory (its working tree, uncommitted changes and
// all), and for a rollback the `--base` revision exported from git beside it. Terrapin's files go under
// <dir>/.terrapin/local/: the run's view of the directory is a link there, so the bot dir the activities
// keep next to a work dir (`<workDir>.terrapin`) lands inside it too, never beside the user's directory.
import { lstat, mkdir, readlink, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { execa } from 'execa';
import type { CheckoutInput, CheckoutResult } from '../shared/activity-contracts.ts';

/** The clone URL a local run's plans and applies use: the working tree as it is. */
export const WORKTREE_URL = 'terrapin-local:worktree';
/** The clone URL of the repository's history (rollback targets). */
export const HISTORY_URL = 'terrapin-local:git';

/** A bad `--dir` or `--base`: nothing was run. */
export class LocalUsageError extends Error {}

export interface LocalTree {
  /** The user's directory, absolute. */
  dir: string;
  /** <dir>/.terrapin/local: everything Terrapin writes. */
  filesDir: string;
  /** The git repository's top level, when the directory is in one. */
  gitRoot?: string;
  /** HEAD's commit, when there is one. */
  head?: string;
  /** The commit a ref names, or a LocalUsageError saying why there is none. */
  resolve(ref: string, option: string): Promise<string>;
  checkout(input: Pick<CheckoutInput, 'cloneUrl' | 'sha' | 'branch'>): Promise<CheckoutResult>;
}

const STATE_FILES = ['terraform.tfstate', 'terraform.tfstate.d'];

async function git(cwd: string, ...args: string[]): Promise<string | undefined> {
  const r = await execa('git', args, { cwd, reject: false, stdin: 'ignore' });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

const exists = (path: string) => lstat(path).then(() => true, () => false);

/**
 * Opens `dir` for a local run. `projectDirs` (relative to dir) are the ones whose local-backend state a
 * revision checkout must share with the working tree.
 */
export async function openTree(dirArg: string, projectDirs: () => readonly string[]): Promise<LocalTree> {
  const dir = resolve(dirArg);
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) throw new LocalUsageError(`--dir ${dirArg}: not a directory`);
  const filesDir = join(dir, '.terrapin', 'local');
  await mkdir(filesDir, { recursive: true, mode: 0o700 });
  // Nothing Terrapin writes here is ever committed (nor listed as a project's file).
  await writeFile(join(dir, '.terrapin', '.gitignore'), '*\n');
  const gitRoot = await git(dir, 'rev-parse', '--show-toplevel');
  const head = gitRoot ? await git(dir, 'rev-parse', '--verify', '-q', 'HEAD^{commit}') : undefined;
  const worktreeLink = join(filesDir, 'worktree');
  if ((await readlink(worktreeLink).catch(() => undefined)) !== dir) {
    await rm(worktreeLink, { force: true, recursive: true });
    await symlink(dir, worktreeLink);
  }

  async function resolveRef(ref: string, option: string): Promise<string> {
    if (!gitRoot) throw new LocalUsageError(`${option} ${ref}: ${dir} is not in a git repository`);
    const sha = await git(dir, 'rev-parse', '--verify', '-q', `${ref}^{commit}`);
    if (!sha) throw new LocalUsageError(`${option} ${ref}: no such commit in ${gitRoot}`);
    return sha;
  }

  async function revision(ref: string): Promise<CheckoutResult> {
    const sha = await resolveRef(ref, '--base');
    const workDir = join(filesDir, `rev-${sha}`);
    if (await exists(workDir)) return { workDir, sha };
    const staging = `${workDir}.partial`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    // The directory as it was at that commit (a subdirectory of the repository: its subtree).
    const prefix = relative(gitRoot!, await realpath(dir)).split(sep).join('/');
    const treeish = prefix ? `${sha}:${prefix}` : sha;
    // From the top level: in a subdirectory git would read the tree-ish's paths relative to it.
    const archive = await execa('git', ['archive', '--format=tar', treeish], { cwd: gitRoot, encoding: 'buffer', reject: false, stdin: 'ignore' });
    const unpacked = archive.exitCode === 0 ? await execa('tar', ['-x', '-C', staging], { input: archive.stdout, reject: false }) : archive;
    if (unpacked.exitCode !== 0) {
      const stderr = typeof unpacked.stderr === 'string' ? unpacked.stderr : new TextDecoder().decode(unpacked.stderr);
      throw new Error(`the files of ${ref} could not be exported: ${stderr.trim().split('\n')[0]}`);
    }
    // A local backend with a relative path keeps the state in the project dir: the revision shares the
    // working tree's, so rolling back changes the real state (an absolute path or remote backend needs nothing).
    for (const projectDir of projectDirs()) {
      for (const name of STATE_FILES) {
        const real = join(dir, projectDir, name);
        const there = join(staging, projectDir, name);
        if ((await exists(real)) && (await exists(join(staging, projectDir))) && !(await exists(there))) await symlink(real, there);
      }
    }
    await rename(staging, workDir);
    return { workDir, sha };
  }

  return {
    dir,
    filesDir,
    ...(gitRoot ? { gitRoot } : {}),
    ...(head ? { head } : {}),
    resolve: resolveRef,
    async checkout(input) {
      if (input.cloneUrl === WORKTREE_URL) return { workDir: worktreeLink, sha: head ?? '0'.repeat(40) };
      if (input.cloneUrl !== HISTORY_URL) throw new Error(`a local run cannot fetch ${input.cloneUrl}`);
      return revision(input.sha ?? input.branch ?? 'HEAD');
    },
  };
}
