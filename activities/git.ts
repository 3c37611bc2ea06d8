// git for the activities: a commit checked out into its own work dir, the default branch's head, deploy
// revisions' history. The installation token reaches git only through GIT_CONFIG_* env (an
// http.extraHeader), never argv, the URL or .git/config, so it cannot leak through `ps`, error messages
// or the work dir; and it is asked for only when git is about to reach the network.
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, asyncLocalStorage as activityContext, CancelledFailure } from '@temporalio/activity';
import type { CheckoutInput, CheckoutResult, CleanupInput } from '../shared/activity-contracts.ts';
import { runCommand, type RunResult } from './process.ts';
import type { OperatorPolicy } from './operator-policy.ts';
import type { RepoRef } from '../shared/contracts.ts';

export interface GitDeps {
  dataDir: string;
  /** A token that can only read `repository` (the clone is all it is for). */
  getInstallationToken(installationId: number, repository: string): Promise<string>;
  /** TERRAPIN_SERVER_CONFIG: what each repository's `.terrapin.yml` may decide (default: the built-in rules). */
  operatorPolicy?: OperatorPolicy;
}

const COMPLETE_MARKER = join('.git', 'terrapin-checkout-complete');
export const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const SAFE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]+$/;

export function safeName(value: string, what: string): string {
  if (!SAFE_NAME.test(value)) throw ApplicationFailure.nonRetryable(`Invalid ${what}: ${value}`, 'InvalidInput');
  return value;
}

/** Work dirs of a PR, or with prNumber 0 of runs that belong to no PR (drift checks of the default branch). */
export function prWorkRoot(dataDir: string, owner: string, repo: string, prNumber: number): string {
  if (!Number.isInteger(prNumber) || prNumber < 0) {
    throw ApplicationFailure.nonRetryable(`Invalid PR number: ${prNumber}`, 'InvalidInput');
  }
  return join(dataDir, 'work', safeName(owner, 'owner'), safeName(repo, 'repository name'), prNumber === 0 ? 'default-branch' : `pr-${prNumber}`);
}

export const isHttp = (url: string) => /^https?:\/\//i.test(url);

/** Environment that authenticates git over http(s) as the installation, without touching any file. */
function authEnv(token: string | undefined): Record<string, string> {
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true' };
  if (!token) return env;
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  return {
    ...env,
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
  };
}

const SAFE_GIT = ['-c', 'core.fsmonitor=false', '-c', 'core.hooksPath=/dev/null'];

export interface GitRunner {
  (cwd: string, ...args: string[]): Promise<RunResult>;
}

/** git with the installation token, if any, in its environment; `gitRunner(undefined)` for commands that stay on this machine. */
export function gitRunner(token: string | undefined, extraEnv: Record<string, string> = {}): GitRunner {
  const env = { ...authEnv(token), ...extraEnv };
  const secrets = token ? [token, env.GIT_CONFIG_VALUE_0!.slice('Authorization: Basic '.length)] : [];
  // A work dir's .git is the repository's, and git runs outside the sandbox holding the token: nothing in
  // it (an fsmonitor command, hooks) may ever run.
  return (cwd, ...args) => runCommand('git', [...SAFE_GIT, ...args], { cwd, env, secrets });
}

/**
 * git that authenticates as the installation to `urls` (a token only if one of them is http(s)), asking
 * for the token on first use: a call that finds everything on disk never reaches GitHub at all.
 */
export function remoteGit(deps: Pick<GitDeps, 'getInstallationToken'>, repo: RepoRef, urls: readonly string[], extraEnv: Record<string, string> = {}): GitRunner {
  let runner: Promise<GitRunner> | undefined;
  return async (cwd, ...args) => {
    runner ??= (urls.some(isHttp) ? deps.getInstallationToken(repo.installationId, repo.name) : Promise.resolve(undefined)).then((token) => gitRunner(token, extraEnv));
    return (await runner)(cwd, ...args);
  };
}

export function gitFailure(what: string, r: RunResult, type = 'GitFailed'): ApplicationFailure {
  // Retryable: most fetch failures are transient (network, rate limits).
  return ApplicationFailure.retryable(`${what} failed (exit ${r.exitCode}): ${r.output.trim().slice(-2000)}`, type);
}

/** A branch's head commit on the remote ('HEAD': the default branch, whatever it is called). */
export async function resolveBranchHead(git: GitRunner, cwd: string, cloneUrl: string, branch: string): Promise<string> {
  const r = await git(cwd, 'ls-remote', '--', cloneUrl, branch === 'HEAD' ? 'HEAD' : `refs/heads/${branch}`);
  if (r.exitCode !== 0) throw gitFailure(`git ls-remote of branch ${branch}`, r);
  const sha = r.stdout.split(/\s+/)[0] ?? '';
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable(`Branch ${branch} not found in the repository`, 'BranchNotFound');
  return sha;
}

export interface BranchHeadInput {
  repo: RepoRef;
  prNumber: number;
  cloneUrl: string;
  branch: string;
}

/** A branch's head on the remote, nothing fetched: whether a plan's base moved costs one `ls-remote`. */
export async function branchHead(input: BranchHeadInput, deps: GitDeps): Promise<string> {
  const root = prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber);
  await mkdir(root, { recursive: true, mode: 0o700 });
  return resolveBranchHead(remoteGit(deps, input.repo, [input.cloneUrl]), root, input.cloneUrl, input.branch);
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** An empty repository in `dir`: no template (no sample hooks to copy, none of the host's template dir). */
export async function initWorkDir(git: GitRunner, dir: string): Promise<void> {
  const r = await git(dir, 'init', '-q', '--template=');
  if (r.exitCode !== 0) throw gitFailure('git init', r);
}

/** One shallow fetch of any number of commits from one URL (all of them, or the fetch fails). */
export function fetchShallow(git: GitRunner, dir: string, cloneUrl: string, shas: readonly string[]): Promise<RunResult> {
  return git(dir, 'fetch', '-q', '--depth', '1', '--no-tags', '--no-write-fetch-head', '--', cloneUrl, ...shas);
}

/** Fetches the commit to check out, every ref of the repository if the server will not give it by sha. */
export async function fetchCommit(git: GitRunner, workDir: string, cloneUrl: string, sha: string): Promise<void> {
  const r = await fetchShallow(git, workDir, cloneUrl, [sha]);
  if (r.exitCode !== 0) {
    // Some servers refuse a sha that no ref advertises; fetching every ref reaches it if it exists at all.
    const all = await git(workDir, 'fetch', '-q', '--no-tags', '--', cloneUrl, '+refs/*:refs/terrapin/*');
    if (all.exitCode !== 0) throw gitFailure(`git fetch of ${sha}`, all);
  }
}

/** Checks the fetched commit out; a commit the repository does not have fails without retry. */
export async function checkoutDetached(git: GitRunner, workDir: string, sha: string): Promise<void> {
  const r = await git(workDir, '-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', sha);
  if (r.exitCode !== 0) {
    const missing = /reference is not a tree|did not match|unknown revision|not a commit/i.test(r.output);
    if (missing) throw ApplicationFailure.nonRetryable(`Commit ${sha} not found in the repository`, 'CommitNotFound');
    throw gitFailure(`git checkout of ${sha}`, r);
  }
}

/** Is the work dir of `sha` under `root` complete (then it is used as it is)? */
export const workDirComplete = (workDir: string) => exists(join(workDir, COMPLETE_MARKER));

/**
 * Makes the work dir `<root>/<sha>` with `fill` (which fetches and checks the commit out), unless it is
 * complete already. Filled beside it and renamed into place: runs checking out the same commit at once
 * (a deploy and a drift check of one merge, say) never see or clobber a half-made work dir.
 */
export async function makeWorkDir(root: string, sha: string, fill: (staging: string) => Promise<void>): Promise<string> {
  const workDir = join(root, sha);
  if (await workDirComplete(workDir)) return workDir;
  const staging = join(root, `.${sha}.${randomUUID()}`);
  try {
    await mkdir(staging, { recursive: true });
    await fill(staging);
    await writeFile(join(staging, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
    // A dir without the marker is what an interrupted attempt of older versions left behind.
    if ((await exists(workDir)) && !(await workDirComplete(workDir))) await rm(workDir, { recursive: true, force: true });
    await rename(staging, workDir).catch(async (err: NodeJS.ErrnoException) => {
      // Another run finished the same checkout first: use theirs.
      if (!['ENOTEMPTY', 'EEXIST'].includes(err.code ?? '') || !(await workDirComplete(workDir))) throw err;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return workDir;
}

/** The commit in its own work dir (with mergeInto: merged into the base). A complete work dir is reused as it is: no network, no token. */
export async function checkout(input: CheckoutInput, deps: GitDeps): Promise<CheckoutResult> {
  if (Boolean(input.sha) === Boolean(input.branch)) {
    throw ApplicationFailure.nonRetryable('checkout needs exactly one of sha or branch', 'InvalidInput');
  }
  const root = prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber);
  const git = remoteGit(deps, input.repo, [input.cloneUrl, ...(input.mergeInto ? [input.repo.cloneUrl] : [])]);

  await mkdir(root, { recursive: true, mode: 0o700 });
  const sha = input.sha?.toLowerCase() ?? (await resolveBranchHead(git, root, input.cloneUrl, input.branch!));
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable(`Not a full commit sha: ${sha}`, 'InvalidInput');
  if (input.mergeInto) return checkoutMerged(git, root, input, sha, input.mergeInto);
  const workDir = await makeWorkDir(root, sha, async (staging) => {
    await initWorkDir(git, staging);
    await fetchCommit(git, staging, input.cloneUrl, sha);
    await checkoutDetached(git, staging, sha);
  });
  return { workDir, sha };
}

/** How deep the history of the head and the base is fetched to find where they meet; then all of it. */
export const MERGE_DEPTHS = [50, 500] as const;
/** Who makes the local merge commit: fixed, so one head and base always give one merge commit. */
const MERGE_IDENTITY = { GIT_AUTHOR_NAME: 'Terrapin', GIT_AUTHOR_EMAIL: 'terrapin@localhost', GIT_COMMITTER_NAME: 'Terrapin', GIT_COMMITTER_EMAIL: 'terrapin@localhost' };

/** Thrown out of a work dir's fill: the merge conflicts (the staging dir is dropped). */
class MergeConflict extends Error {
  readonly files: string[];
  constructor(files: string[]) {
    super('merge conflict');
    this.files = files;
  }
}

/**
 * The head merged into the base, as merging the PR would make it, in the work dir `<head>+<base>`. The
 * merge commit has a fixed identity and the later of the two commits' dates: the same two commits make
 * the same merge commit on every worker. A conflict checks nothing out and names the files.
 */
async function checkoutMerged(git: GitRunner, root: string, input: CheckoutInput, sha: string, into: NonNullable<CheckoutInput['mergeInto']>): Promise<CheckoutResult> {
  const baseUrl = input.repo.cloneUrl;
  const baseSha = ('sha' in into ? into.sha : await resolveBranchHead(git, root, baseUrl, into.branch)).toLowerCase();
  if (!SHA.test(baseSha)) throw ApplicationFailure.nonRetryable(`Not a full commit sha: ${baseSha}`, 'InvalidInput');
  let mergeSha = '';
  try {
    const workDir = await makeWorkDir(root, `${sha}+${baseSha}`, async (staging) => {
      await initWorkDir(git, staging);
      await fetchForMerge(git, staging, [{ url: input.cloneUrl, sha }, { url: baseUrl, sha: baseSha }]);
      mergeSha = await mergeCommit(staging, sha, baseSha);
      await checkoutDetached(git, staging, mergeSha);
    });
    if (!mergeSha) {
      const r = await git(workDir, 'rev-parse', 'HEAD');
      if (r.exitCode !== 0) throw gitFailure('git rev-parse of the merge', r);
      mergeSha = r.stdout.trim();
    }
    return { workDir, sha, baseSha, mergeSha };
  } catch (err) {
    if (err instanceof MergeConflict) return { workDir: '', sha, baseSha, conflicts: err.files };
    throw err;
  }
}

/** Fetches both commits deep enough to hold a common ancestor (deeper and deeper, then all history). */
async function fetchForMerge(git: GitRunner, dir: string, commits: Array<{ url: string; sha: string }>): Promise<void> {
  const byUrl = new Map<string, string[]>();
  for (const c of commits) byUrl.set(c.url, [...(byUrl.get(c.url) ?? []), c.sha]);
  const fetchAll = async (depthArgs: string[]) => {
    for (const [url, shas] of byUrl) {
      const r = await git(dir, 'fetch', '-q', ...depthArgs, '--no-tags', '--no-write-fetch-head', '--', url, ...shas);
      if (r.exitCode === 0) continue;
      // Some servers refuse a sha that no ref advertises; every ref reaches it if it exists at all.
      const all = await git(dir, 'fetch', '-q', '--no-tags', '--', url, '+refs/*:refs/terrapin/*');
      if (all.exitCode !== 0) throw gitFailure(`git fetch of ${shas.join(', ')}`, all);
    }
  };
  const [head, base] = [commits[0]!.sha, commits[1]!.sha];
  const met = async () => (await git(dir, 'merge-base', base, head)).exitCode === 0;
  for (const depth of MERGE_DEPTHS) {
    await fetchAll(['--depth', String(depth)]);
    if (await met()) return;
  }
  const shallow = await exists(join(dir, '.git', 'shallow'));
  if (shallow) await fetchAll(['--unshallow']);
}

/** The merge commit of `head` into `base`, made without touching a work tree; MergeConflict if it conflicts. */
async function mergeCommit(dir: string, head: string, base: string): Promise<string> {
  const local = gitRunner(undefined);
  const merged = await local(dir, 'merge-tree', '--write-tree', '--name-only', '--no-messages', '-z', base, head);
  if (merged.exitCode === 1) {
    const [, ...files] = merged.stdout.split('\0').filter(Boolean);
    throw new MergeConflict([...new Set(files)].sort());
  }
  const missing = /refusing to merge unrelated histories|not something we can merge/i.test(merged.output);
  if (missing) throw ApplicationFailure.nonRetryable(`The PR head ${head.slice(0, 7)} and its base ${base.slice(0, 7)} have no history in common`, 'UnrelatedHistories');
  if (merged.exitCode !== 0) throw gitFailure('git merge-tree', merged);
  const tree = merged.stdout.split('\0')[0]!.trim();
  const dates = await local(dir, 'show', '-s', '--format=%ct', base, head);
  if (dates.exitCode !== 0) throw gitFailure('git show of the commit dates', dates);
  const when = `@${Math.max(...dates.stdout.split(/\s+/).filter(Boolean).map(Number))} +0000`;
  const commit = gitRunner(undefined, { ...MERGE_IDENTITY, GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when });
  const made = await commit(dir, 'commit-tree', '--no-gpg-sign', tree, '-p', base, '-p', head, '-m', `Merge ${head} into ${base}`);
  if (made.exitCode !== 0) throw gitFailure('git commit-tree of the merge', made);
  return made.stdout.trim();
}

export interface DefaultBranchHead {
  sha: string;
  branch?: string;
}

async function lsRemoteDefaultBranch(git: GitRunner, cwd: string, cloneUrl: string): Promise<DefaultBranchHead> {
  const r = await git(cwd, 'ls-remote', '--symref', '--', cloneUrl, 'HEAD');
  if (r.exitCode !== 0) throw gitFailure('git ls-remote of the default branch', r);
  const branch = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(r.stdout)?.[1];
  const sha = /^([0-9a-f]{40}(?:[0-9a-f]{24})?)\tHEAD$/m.exec(r.stdout)?.[1] ?? '';
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable('The repository has no default branch', 'BranchNotFound');
  return { sha, branch };
}

// Lookups of a default branch's head under way in this worker, by installation and URL, with when they began.
const lookups = new Map<string, { began: number; head: Promise<DefaultBranchHead> }>();
/** A lookup older than this is not joined (a slow one's answer may have been given long before). */
export const JOIN_LOOKUP_MS = 500;

/** Settles as `p` does, or rejects as soon as the current activity (if any) is cancelled. */
function unlessCancelled<T>(p: Promise<T>): Promise<T> {
  const signal = activityContext.getStore()?.cancellationSignal;
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const cancelled = () => reject(signal.reason instanceof Error ? signal.reason : new CancelledFailure('Activity cancelled'));
    if (signal.aborted) return cancelled();
    signal.addEventListener('abort', cancelled, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', cancelled));
  });
}

/**
 * The default branch's name and head commit, from the base repository (`git ls-remote --symref <url> HEAD`).
 *
 * With `share` (the installation), a lookup of the same repository already under way in this worker, and
 * begun less than JOIN_LOOKUP_MS ago, is joined rather than repeated: a PR's plan asks at the same moment
 * in policyAt and in selectProjects. Only a lookup in flight is joined, never a finished one (nothing is
 * cached): the server gave its answer after that lookup began, so the answer is less than JOIN_LOOKUP_MS
 * older than this call — no older than a lookup of its own could be by the time it ran, on a loaded worker
 * or a slow network. The policy and the selection of one plan then also name the same commit. A joined lookup
 * that fails (or whose activity is cancelled) is not the joiner's: it asks itself.
 */
export async function resolveDefaultBranch(git: GitRunner, cwd: string, cloneUrl: string, share?: string): Promise<DefaultBranchHead> {
  if (share === undefined) return lsRemoteDefaultBranch(git, cwd, cloneUrl);
  const key = `${share}\0${cloneUrl}`;
  const underWay = lookups.get(key);
  if (underWay && performance.now() - underWay.began < JOIN_LOOKUP_MS) {
    const joined = await unlessCancelled(underWay.head).then(
      (head) => head,
      (err: unknown) => {
        if (activityContext.getStore()?.cancellationSignal.aborted) throw err;
        return undefined;
      },
    );
    if (joined) return joined;
    return lsRemoteDefaultBranch(git, cwd, cloneUrl);
  }
  const mine = { began: performance.now(), head: lsRemoteDefaultBranch(git, cwd, cloneUrl) };
  lookups.set(key, mine);
  try {
    return await mine.head;
  } finally {
    if (lookups.get(key) === mine) lookups.delete(key);
  }
}

export async function removeWorkDirs(input: CleanupInput, deps: Pick<GitDeps, 'dataDir'>): Promise<void> {
  await rm(prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber), {
    recursive: true,
    force: true,
  });
}

export interface RevisionFactsInput {
  repo: RepoRef;
  /** The project whose deploy queue asks (each queue keeps its own history mirror: no two fetches share one). */
  project: string;
  sha: string;
  /** Is `sha` this commit or one of its ancestors? */
  newer?: string;
}

export interface RevisionFacts {
  /** First parent of `sha`: what the default branch was before a merge (undefined for a root commit). */
  parentSha?: string;
  /** `sha` equals `newer` or is one of its ancestors: deploying it would go backwards. */
  olderThanNewer?: boolean;
}

/**
 * Parent and ancestry of deploy revisions, from a blobless mirror of the history (work dirs are shallow
 * clones, which know neither).
 */
export async function revisionFacts(input: RevisionFactsInput, deps: GitDeps): Promise<RevisionFacts> {
  const shas = [input.sha, ...(input.newer ? [input.newer] : [])].map((s) => s.toLowerCase());
  for (const s of shas) if (!SHA.test(s)) throw ApplicationFailure.nonRetryable(`Not a full commit sha: ${s}`, 'InvalidInput');
  const mirror = join(prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, 0), '..', 'history', `${safeName(input.project, 'project name')}.git`);
  const git = remoteGit(deps, input.repo, [input.repo.cloneUrl]);
  await mkdir(mirror, { recursive: true });
  if (!(await exists(join(mirror, 'HEAD')))) {
    const r = await git(mirror, 'init', '-q', '--bare');
    if (r.exitCode !== 0) throw gitFailure('git init of the history mirror', r);
  }
  const fetched = await git(mirror, 'fetch', '-q', '--no-tags', '--filter=blob:none', '--', input.repo.cloneUrl, ...shas);
  if (fetched.exitCode !== 0) throw gitFailure('git fetch of deploy revisions', fetched);
  const parent = await git(mirror, 'rev-parse', '--verify', '-q', `${shas[0]}^1`);
  const facts: RevisionFacts = { parentSha: parent.exitCode === 0 ? parent.stdout.trim() : undefined };
  if (shas[1]) {
    const r = await git(mirror, 'merge-base', '--is-ancestor', shas[0]!, shas[1]);
    if (r.exitCode > 1) throw gitFailure('git merge-base', r);
    facts.olderThanNewer = r.exitCode === 0;
  }
  return facts;
}
