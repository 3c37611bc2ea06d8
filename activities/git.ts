// Checks a commit out into its own work dir and reads the repository's `.terrapin.yml` at that commit.
// The installation token reaches git only through GIT_CONFIG_* env (an http.extraHeader), never argv,
// the URL or .git/config, so it cannot leak through `ps`, error messages or the work dir.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { CheckoutInput, CheckoutResult, CleanupInput, OnFailure } from './contracts.ts';
import { runCommand, type RunResult } from './process.ts';
import { CONFIG_FILE, formatConfigError, parseRepoConfigFile, projectsFromDetection, resolveProject, type PullRequestFacts } from './repo-config/index.ts';
import type { ApplyRequirement, RepoConfig } from './repo-config/types.ts';
import { selectProjects } from './project-selection.ts';
import type { RepoRef } from '../workflows/types.ts';

export interface GitDeps {
  dataDir: string;
  /** A token that can only read `repository` (the clone is all it is for). */
  getInstallationToken(installationId: number, repository: string): Promise<string>;
}

const COMPLETE_MARKER = join('.git', 'terrapin-checkout-complete');
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const SAFE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]+$/;

function safeName(value: string, what: string): string {
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

const isHttp = (url: string) => /^https?:\/\//i.test(url);

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

interface GitRunner {
  (cwd: string, ...args: string[]): Promise<RunResult>;
}

function gitRunner(token: string | undefined): GitRunner {
  const env = authEnv(token);
  const secrets = token ? [token, env.GIT_CONFIG_VALUE_0!.slice('Authorization: Basic '.length)] : [];
  return (cwd, ...args) => runCommand('git', args, { cwd, env, secrets });
}

function gitFailure(what: string, r: RunResult, type = 'GitFailed'): ApplicationFailure {
  // Retryable: most fetch failures are transient (network, rate limits).
  return ApplicationFailure.retryable(`${what} failed (exit ${r.exitCode}): ${r.output.trim().slice(-2000)}`, type);
}

async function resolveBranchHead(git: GitRunner, cwd: string, cloneUrl: string, branch: string): Promise<string> {
  // 'HEAD' is the repository's default branch, whatever it is called.
  const r = await git(cwd, 'ls-remote', '--', cloneUrl, branch === 'HEAD' ? 'HEAD' : `refs/heads/${branch}`);
  if (r.exitCode !== 0) throw gitFailure(`git ls-remote of branch ${branch}`, r);
  const sha = r.stdout.split(/\s+/)[0] ?? '';
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable(`Branch ${branch} not found in the repository`, 'BranchNotFound');
  return sha;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function fetchCommit(git: GitRunner, workDir: string, cloneUrl: string, sha: string): Promise<void> {
  let r = await git(workDir, 'init', '-q');
  if (r.exitCode !== 0) throw gitFailure('git init', r);
  r = await git(workDir, 'fetch', '-q', '--depth', '1', '--no-tags', '--', cloneUrl, sha);
  if (r.exitCode !== 0) {
    // Some servers refuse a sha that no ref advertises; fetching every ref reaches it if it exists at all.
    const all = await git(workDir, 'fetch', '-q', '--no-tags', '--', cloneUrl, '+refs/*:refs/terrapin/*');
    if (all.exitCode !== 0) throw gitFailure(`git fetch of ${sha}`, all);
  }
  r = await git(workDir, '-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', sha);
  if (r.exitCode !== 0) {
    const missing = /reference is not a tree|did not match|unknown revision|not a commit/i.test(r.output);
    if (missing) throw ApplicationFailure.nonRetryable(`Commit ${sha} not found in the repository`, 'CommitNotFound');
    throw gitFailure(`git checkout of ${sha}`, r);
  }
}

export async function checkout(input: CheckoutInput, deps: GitDeps): Promise<CheckoutResult> {
  if (Boolean(input.sha) === Boolean(input.branch)) {
    throw ApplicationFailure.nonRetryable('checkout needs exactly one of sha or branch', 'InvalidInput');
  }
  const root = prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber);
  const token = isHttp(input.cloneUrl) ? await deps.getInstallationToken(input.repo.installationId, input.repo.name) : undefined;
  const git = gitRunner(token);

  await mkdir(root, { recursive: true });
  const sha = input.sha?.toLowerCase() ?? (await resolveBranchHead(git, root, input.cloneUrl, input.branch!));
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable(`Not a full commit sha: ${sha}`, 'InvalidInput');

  const workDir = join(root, sha);
  if (!(await exists(join(workDir, COMPLETE_MARKER)))) {
    // Fetched beside the work dir and renamed into place: runs checking out the same commit at once
    // (a deploy and a drift check of one merge, say) never see or clobber a half-made work dir.
    const staging = join(root, `.${sha}.${randomUUID()}`);
    try {
      await mkdir(staging, { recursive: true });
      await fetchCommit(git, staging, input.cloneUrl, sha);
      await writeFile(join(staging, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
      // A dir without the marker is what an interrupted attempt of older versions left behind.
      if ((await exists(workDir)) && !(await exists(join(workDir, COMPLETE_MARKER)))) await rm(workDir, { recursive: true, force: true });
      await rename(staging, workDir).catch(async (err: NodeJS.ErrnoException) => {
        // Another run finished the same checkout first: use theirs.
        if (!['ENOTEMPTY', 'EEXIST'].includes(err.code ?? '') || !(await exists(join(workDir, COMPLETE_MARKER)))) throw err;
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  const { config, ...settings } = await readRepoConfig(workDir, input.pr);
  const baseSha = input.baseSha ?? (input.compareWithParent ? await firstParent(git, workDir, sha) : undefined);
  if ((!baseSha && !input.listProjects) || !config) return { workDir, sha, ...settings, allowForks: config?.allowForks ?? false, ...(config ? { permissions: config.permissions } : {}) };
  const changedFiles = baseSha ? await diffAgainstBase(git, workDir, input.cloneUrl, baseSha.toLowerCase(), sha) : undefined;
  const listed = await git(workDir, 'ls-files', '-z');
  if (listed.exitCode !== 0) throw gitFailure('git ls-files', listed);
  const selection = await selectProjects({ workDir, config, repoFiles: listed.stdout.split('\0').filter(Boolean), changedFiles, pr: input.pr });
  return {
    workDir,
    sha,
    ...settings,
    projects: selection.affected,
    allProjects: selection.all,
    parallelism: config.parallelism,
    changedFiles,
    allowForks: config.allowForks,
    deployOnPush: config.deployOnPush,
    permissions: config.permissions,
  };
}

/** The first parent of a commit (what a branch was before a merge), read from the commit object itself. */
async function firstParent(git: GitRunner, workDir: string, sha: string): Promise<string | undefined> {
  const r = await git(workDir, 'cat-file', '-p', sha);
  if (r.exitCode !== 0) throw gitFailure(`git cat-file of ${sha}`, r);
  return /^parent ([0-9a-f]{40,64})$/m.exec(r.stdout)?.[1];
}

/** Files that differ between the base and the head (the trees, so shallow clones suffice); undefined if the base cannot be fetched. */
async function diffAgainstBase(git: GitRunner, workDir: string, cloneUrl: string, baseSha: string, sha: string): Promise<string[] | undefined> {
  if (!SHA.test(baseSha)) return undefined;
  const fetched = await git(workDir, 'fetch', '-q', '--depth', '1', '--no-tags', '--', cloneUrl, baseSha);
  if (fetched.exitCode !== 0) return undefined;
  const diff = await git(workDir, 'diff', '--name-only', '-z', '--no-renames', baseSha, sha);
  return diff.exitCode === 0 ? diff.stdout.split('\0').filter(Boolean) : undefined;
}

export async function removeWorkDirs(input: CleanupInput, deps: Pick<GitDeps, 'dataDir'>): Promise<void> {
  await rm(prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber), {
    recursive: true,
    force: true,
  });
}

export interface RepoSettings {
  /** The parsed file (or the defaults when there is none); absent when it has errors. */
  config?: RepoConfig;
  /** The root project's onFailure (the PR loop plans one root project for now). */
  onFailure: OnFailure;
  applyRequirements?: ApplyRequirement[];
  /** Every problem in `.terrapin.yml`, one line each ("file:line:col: path: message"); settings are defaults. */
  configErrors?: string[];
}

/** Reads `.terrapin.yml` from a checked-out work dir with the full schema (docs/config.md). */
export async function readRepoConfig(workDir: string, pr?: PullRequestFacts): Promise<RepoSettings> {
  // No file means the defaults, which an empty file gives.
  const text = await readFile(join(workDir, CONFIG_FILE), 'utf8').catch(() => '');
  const { config, errors } = parseRepoConfigFile(text, { cpuCount: availableParallelism() });
  if (!config) return { onFailure: 'rollback', configErrors: errors.map(formatConfigError) };
  // The root project as listed, or implied by the defaults; then its `when` rules for this PR.
  const root =
    config.projects.find((p) => p.dir === '.' && p.workspace === 'default') ??
    projectsFromDetection([{ name: 'default', dir: '.' }], config.defaults)[0]!;
  const settings = pr ? resolveProject(root, pr) : root;
  return { config, onFailure: settings.onFailure, applyRequirements: settings.applyRequirements };
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
  const token = isHttp(input.repo.cloneUrl) ? await deps.getInstallationToken(input.repo.installationId, input.repo.name) : undefined;
  const git = gitRunner(token);
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
