// One file of a repository at a revision, read from git objects without a work tree or a full clone: one
// bare mirror per repository (<data>/mirrors/<owner>/<repo>.git), fetched one commit deep and without
// blobs, so a revision costs its commit and trees, and a file its one blob.
//
// git rather than the contents API: the tree entry's mode is git's own (a symlink or submodule is refused
// for what it is, its target never read), the same scoped token and code path serve every read of the
// repository, and file:// clone URLs (tests, mirrors) work alike.
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { FileAtRevision, ReadFileAtInput } from '../shared/activity-contracts.ts';
import { SHA, exists, gitFailure, gitRunner, remoteGit, resolveDefaultBranch, safeName, type GitDeps, type GitRunner } from './git.ts';

/** Most bytes of a file read (`.terrapin.yml` above all): more is refused rather than parsed. */
export const CONFIG_SIZE_LIMIT = 256 * 1024;

export interface TreeEntry {
  mode: string;
  type: string;
  oid: string;
  /** With `ls-tree -l`: the blob's size (undefined for trees and submodules). */
  size?: number;
  path: string;
}

/** The entries of `git ls-tree -z [-l]` output. */
export function treeEntries(stdout: string): TreeEntry[] {
  return stdout
    .split('\0')
    .map((record) => /^(\d{6}) (\w+) ([0-9a-f]{40,64})(?: +(-|\d+))?\t(.*)$/s.exec(record))
    .filter((m) => m !== null)
    .map(([, mode, type, oid, size, path]) => ({ mode: mode!, type: type!, oid: oid!, size: size && size !== '-' ? Number(size) : undefined, path: path! }));
}

/** Why an entry is not read as a file: anything but a regular blob, or (size known) over the limit. The message names the path, never the content. */
export function entryRefusal(path: string, entry: Pick<TreeEntry, 'mode' | 'type'>, size?: number): string | undefined {
  const { mode, type } = entry;
  if (mode === '120000') return `${path} is a symbolic link; it must be a regular file (its target is not read)`;
  if (type !== 'blob' || (mode !== '100644' && mode !== '100755')) {
    return `${path} must be a regular file, not a ${type === 'commit' ? 'submodule' : type === 'tree' ? 'directory' : `${type} (mode ${mode})`}`;
  }
  if (size !== undefined && size > CONFIG_SIZE_LIMIT) return `${path} is ${size} bytes; at most ${CONFIG_SIZE_LIMIT} are read`;
  return undefined;
}

/** A blob's text, as in the file. */
export async function readBlob(git: GitRunner, cwd: string, oid: string, size: number): Promise<string> {
  const blob = await git(cwd, 'cat-file', 'blob', oid);
  if (blob.exitCode !== 0) throw gitFailure(`git cat-file of ${oid}`, blob);
  // The runner strips one final newline; put it back, so positions at the end of the file stay right.
  const missing = size - Buffer.byteLength(blob.stdout);
  return blob.stdout + (missing === 1 ? '\n' : missing === 2 ? '\r\n' : '');
}

// Nothing in a mirror is ever fetched behind our back (a partial clone would lazily fetch any blob a
// command touches, unmeasured), and paths are literal (no pathspec magic from a caller's path).
const MIRROR_ENV = { GIT_NO_LAZY_FETCH: '1', GIT_LITERAL_PATHSPECS: '1' };

/** A relative path of the repository: no empty, `.` or `..` segment, no leading or trailing slash, no NUL. */
function checkedPath(path: string): string {
  const segments = path.split('/');
  if (path.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw ApplicationFailure.nonRetryable(`Not a path in the repository: ${JSON.stringify(path)}`, 'InvalidInput');
  }
  return path;
}

export function mirrorDir(dataDir: string, repo: { owner: string; name: string }): string {
  return join(dataDir, 'mirrors', safeName(repo.owner, 'owner'), `${safeName(repo.name, 'repository name')}.git`);
}

// Fetches into one mirror run one at a time in this process (git locks the mirror's shallow file: a
// second fetch at once would fail rather than wait). Across processes, that failure is retried.
const fetching = new Map<string, Promise<unknown>>();
function oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (fetching.get(key) ?? Promise.resolve()).then(fn, fn);
  const settled = run.catch(() => undefined);
  fetching.set(key, settled);
  void settled.then(() => fetching.get(key) === settled && fetching.delete(key));
  return run;
}

/** Created beside its place and renamed into it, so no run ever sees a half-initialised mirror. */
async function ensureMirror(git: GitRunner, mirror: string): Promise<void> {
  if (await exists(join(mirror, 'HEAD'))) return;
  await mkdir(dirname(mirror), { recursive: true, mode: 0o700 });
  const staging = `${mirror}.${randomUUID()}`;
  try {
    const r = await git(dirname(mirror), 'init', '-q', '--bare', '--', staging);
    if (r.exitCode !== 0) throw gitFailure('git init of the repository mirror', r);
    await rename(staging, mirror).catch(async (err: NodeJS.ErrnoException) => {
      if (!['ENOTEMPTY', 'EEXIST'].includes(err.code ?? '') || !(await exists(join(mirror, 'HEAD')))) throw err;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Fetches one object (a commit, one deep, without its blobs; or one blob) into the mirror. */
async function fetchObject(git: GitRunner, mirror: string, url: string, object: string, what: string): Promise<void> {
  const r = await oneAtATime(mirror, () => git(mirror, 'fetch', '-q', '--no-tags', '--no-write-fetch-head', '--depth', '1', '--filter=blob:none', '--', url, object));
  if (r.exitCode === 0) return;
  if (/not our ref|couldn't find remote ref|no such remote ref|unadvertised object|not a valid object/i.test(r.output)) {
    throw ApplicationFailure.nonRetryable(`${what} not found in the repository`, 'CommitNotFound');
  }
  throw gitFailure(`git fetch of ${what}`, r);
}

/**
 * `path` at `ref` (a full commit sha, or 'HEAD': the default branch's head, named in `branch`), from the
 * base repository. A revision already in the mirror costs no network; 'HEAD' always asks where it is.
 */
export async function readFileAt(input: ReadFileAtInput, deps: GitDeps): Promise<FileAtRevision> {
  const path = checkedPath(input.path);
  const ref = input.ref === 'HEAD' ? 'HEAD' : input.ref.toLowerCase();
  if (ref !== 'HEAD' && !SHA.test(ref)) throw ApplicationFailure.nonRetryable(`Not a full commit sha or HEAD: ${input.ref}`, 'InvalidInput');
  const url = input.repo.cloneUrl;
  const mirror = mirrorDir(deps.dataDir, input.repo);
  const local = gitRunner(undefined, MIRROR_ENV);
  const remote = remoteGit(deps, input.repo, [url], MIRROR_ENV);
  await ensureMirror(local, mirror);

  const head = ref === 'HEAD' ? await resolveDefaultBranch(remote, mirror, url, String(input.repo.installationId)) : undefined;
  const at: FileAtRevision = head ? { sha: head.sha, ...(head.branch ? { branch: head.branch } : {}) } : { sha: ref };
  // Read at once (a commit read before is in the mirror already); when it is not, fetched and read again.
  const listTree = () => local(mirror, 'ls-tree', '-z', `${at.sha}^{commit}`, '--', path);
  let listed = await listTree();
  if (listed.exitCode !== 0) {
    await fetchObject(remote, mirror, url, at.sha, `commit ${at.sha}`);
    listed = await listTree();
  }
  if (listed.exitCode !== 0) throw gitFailure(`git ls-tree of ${at.sha}`, listed);
  // Exactly this path: a directory on the way that is a symlink, say, is no path to a file.
  const entry = treeEntries(listed.stdout).find((e) => e.path === path);
  if (!entry) return at;
  const refusedByKind = entryRefusal(path, entry);
  if (refusedByKind) return { ...at, refused: refusedByKind };

  // A tree entry does not say how big its blob is, and nothing short of the blob does: it is fetched (GitHub
  // caps files at 100 MB), measured, and read only under the limit.
  const sizeOf = () => local(mirror, 'cat-file', '-s', entry.oid);
  let sized = await sizeOf();
  if (sized.exitCode !== 0) {
    await fetchObject(remote, mirror, url, entry.oid, `${path} at ${at.sha}`);
    sized = await sizeOf();
  }
  if (sized.exitCode !== 0) throw gitFailure(`git cat-file of ${path}`, sized);
  const size = Number(sized.stdout.trim());
  const refusedBySize = entryRefusal(path, entry, size);
  if (refusedBySize) return { ...at, refused: refusedBySize };
  return { ...at, text: await readBlob(local, mirror, entry.oid, size) };
}
