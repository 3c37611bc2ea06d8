// Checks a commit out into its own work dir and reads the repository's `.terrapin.yml` at that commit.
// The installation token reaches git only through GIT_CONFIG_* env (an http.extraHeader), never argv,
// the URL or .git/config, so it cannot leak through `ps`, error messages or the work dir.
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { CheckoutInput, CheckoutResult, CleanupInput, OnFailure } from '../shared/activity-contracts.ts';
import { runCommand, type RunResult } from './process.ts';
import { CONFIG_FILE, formatConfigError, parseRepoConfigFile, projectsFromDetection, resolveProject, type ParseResult, type PullRequestFacts } from './repo-config/index.ts';
import type { ApplyRequirement, ConfigError, RepoConfig } from './repo-config/types.ts';
import { capByOperator, combineConfigs, operatorRuleErrors, policyChanges as policyChangesOf } from './repo-config/policy.ts';
import { baseBranchAllowed, DEFAULT_OPERATOR_POLICY, effectiveRules, type EffectiveRules, type OperatorPolicy } from './operator-policy.ts';
import { selectProjects } from './project-selection.ts';
import type { RepoRef } from '../shared/contracts.ts';

export interface GitDeps {
  dataDir: string;
  /** A token that can only read `repository` (the clone is all it is for). */
  getInstallationToken(installationId: number, repository: string): Promise<string>;
  /** TERRAPIN_SERVER_CONFIG: what each repository's `.terrapin.yml` may decide (default: the built-in rules). */
  operatorPolicy?: OperatorPolicy;
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

const SAFE_GIT = ['-c', 'core.fsmonitor=false', '-c', 'core.hooksPath=/dev/null'];

interface GitRunner {
  (cwd: string, ...args: string[]): Promise<RunResult>;
}

function gitRunner(token: string | undefined): GitRunner {
  const env = authEnv(token);
  const secrets = token ? [token, env.GIT_CONFIG_VALUE_0!.slice('Authorization: Basic '.length)] : [];
  // A work dir's .git is the repository's, and git runs outside the sandbox holding the token: nothing in
  // it (an fsmonitor command, hooks) may ever run.
  return (cwd, ...args) => runCommand('git', [...SAFE_GIT, ...args], { cwd, env, secrets });
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

  await mkdir(root, { recursive: true, mode: 0o700 });
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
  const rules = effectiveRules(deps.operatorPolicy ?? DEFAULT_OPERATOR_POLICY, `${input.repo.owner}/${input.repo.name}`);
  const reviewed = await reviewedCommit(git, root, workDir, input, sha);
  const policy = {
    policySha: reviewed.sha,
    ...(reviewed.branch ? { defaultBranch: reviewed.branch } : {}),
    ...(input.pr
      ? {
          baseAllowed: baseBranchAllowed(rules, input.pr.baseBranch, reviewed.branch),
          allowedBaseBranches: rules.allowedBaseBranches.length ? rules.allowedBaseBranches : reviewed.branch ? [reviewed.branch] : [],
        }
      : {}),
  };
  const { config, policyChanges, ...settings } = await readRepoConfig(git, workDir, { sha, reviewed, rules, pr: input.pr });
  const baseSha = input.baseSha ?? (input.compareWithParent ? await firstParent(git, workDir, sha) : undefined);
  if ((!baseSha && !input.listProjects) || !config) {
    return { workDir, sha, ...settings, ...policy, allowForks: config?.allowForks ?? false, ...(config ? { permissions: config.permissions, policyChanges } : {}) };
  }
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
    ...policy,
    policyChanges,
  };
}

/** The commit whose `.terrapin.yml` policy counts: the default branch's head (or, when asked, the commit itself). */
async function reviewedCommit(git: GitRunner, root: string, workDir: string, input: CheckoutInput, sha: string): Promise<ReviewedCommit> {
  if (input.policyFrom === 'commit') return { sha };
  // Always the base repository's URL: a fork's "default branch" is the fork author's.
  const head = await resolveDefaultBranch(git, root, input.repo.cloneUrl);
  if (head.sha !== sha) {
    const fetched = await git(workDir, 'fetch', '-q', '--depth', '1', '--no-tags', '--', input.repo.cloneUrl, head.sha);
    if (fetched.exitCode !== 0) throw gitFailure(`git fetch of the default branch (${head.sha})`, fetched);
  }
  return head;
}

/** The default branch's name and head commit, from the base repository (`git ls-remote --symref <url> HEAD`). */
async function resolveDefaultBranch(git: GitRunner, cwd: string, cloneUrl: string): Promise<{ sha: string; branch?: string }> {
  const r = await git(cwd, 'ls-remote', '--symref', '--', cloneUrl, 'HEAD');
  if (r.exitCode !== 0) throw gitFailure('git ls-remote of the default branch', r);
  const branch = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(r.stdout)?.[1];
  const sha = /^([0-9a-f]{40}(?:[0-9a-f]{24})?)\tHEAD$/m.exec(r.stdout)?.[1] ?? '';
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable('The repository has no default branch', 'BranchNotFound');
  return { sha, branch };
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

interface ReviewedCommit {
  sha: string;
  /** The default branch's name (absent when the caller named the commit itself). */
  branch?: string;
}

export interface RepoSettings {
  /** Description from the commit, policy from the reviewed copy, capped by the operator; absent when either has errors. */
  config?: RepoConfig;
  /** Policy keys the commit's copy changes compared with the reviewed one (they take effect after merge). */
  policyChanges?: string[];
  /** The root project's onFailure (the PR loop plans one root project for now). */
  onFailure: OnFailure;
  applyRequirements?: ApplyRequirement[];
  /** Every problem in `.terrapin.yml`, one line each ("file:line:col: path: message"); settings are defaults. */
  configErrors?: string[];
}

/** Most bytes of `.terrapin.yml` read: more is refused rather than parsed. */
export const CONFIG_SIZE_LIMIT = 256 * 1024;

/**
 * `.terrapin.yml` at a commit, from the git objects (never the work tree, where a symlink would lead
 * anywhere): only a regular file under the size cap. The refusal names the path, never the content.
 */
export async function readConfigBlob(git: GitRunner, workDir: string, sha: string, file: string): Promise<{ text: string } | { error: ConfigError }> {
  const listed = await git(workDir, 'ls-tree', '-l', '-z', sha, '--', CONFIG_FILE);
  if (listed.exitCode !== 0) throw gitFailure(`git ls-tree of ${sha}`, listed);
  const entry = /^(\d{6}) (\w+) ([0-9a-f]{40,64}) +(-|\d+)\t/.exec(listed.stdout);
  // No file means the defaults, which an empty file gives.
  if (!entry) return { text: '' };
  const [, mode, type, oid, size] = entry;
  const refuse = (message: string) => ({ error: { file, line: 1, column: 1, path: '', message } });
  if (mode === '120000') return refuse(`${CONFIG_FILE} is a symbolic link; it must be a regular file (its target is not read)`);
  if (type !== 'blob' || (mode !== '100644' && mode !== '100755')) return refuse(`${CONFIG_FILE} must be a regular file, not a ${type === 'commit' ? 'submodule' : type === 'tree' ? 'directory' : `${type} (mode ${mode})`}`);
  if (Number(size) > CONFIG_SIZE_LIMIT) return refuse(`${CONFIG_FILE} is ${size} bytes; at most ${CONFIG_SIZE_LIMIT} are read`);
  const blob = await git(workDir, 'cat-file', 'blob', oid!);
  if (blob.exitCode !== 0) throw gitFailure(`git cat-file of ${CONFIG_FILE}`, blob);
  // The runner strips one final newline; put it back, so positions at the end of the file stay right.
  const missing = Number(size) - Buffer.byteLength(blob.stdout);
  return { text: blob.stdout + (missing === 1 ? '\n' : missing === 2 ? '\r\n' : '') };
}

async function parseAt(git: GitRunner, workDir: string, sha: string, file: string): Promise<ParseResult> {
  const read = await readConfigBlob(git, workDir, sha, file);
  if ('error' in read) return { errors: [read.error] };
  return parseRepoConfigFile(read.text, { cpuCount: availableParallelism(), file });
}

/**
 * Reads `.terrapin.yml` with the full schema (docs/config.md): the description (projects, dirs, …) at
 * `sha`, the policy (permissions, requirements, hooks, env, …) at the reviewed commit, within the operator's rules.
 */
export async function readRepoConfig(
  git: GitRunner,
  workDir: string,
  opts: { sha: string; reviewed: ReviewedCommit; rules: EffectiveRules; pr?: PullRequestFacts },
): Promise<RepoSettings> {
  const { sha, reviewed, rules } = opts;
  const ownPolicy = reviewed.sha === sha;
  const head = await parseAt(git, workDir, sha, CONFIG_FILE);
  // The reviewed copy's errors name it by branch and commit, `main@1a2b3c4:.terrapin.yml:3:5`, like git's rev:path.
  const reviewedFile = ownPolicy ? CONFIG_FILE : `${reviewed.branch ?? 'default branch'}@${reviewed.sha.slice(0, 7)}:${CONFIG_FILE}`;
  const policy = ownPolicy ? head : await parseAt(git, workDir, reviewed.sha, reviewedFile);
  const failed = (errors: ConfigError[]): RepoSettings => ({ onFailure: 'rollback', configErrors: errors.map(formatConfigError) });
  if (!head.config || !policy.config) return failed([...head.errors, ...(ownPolicy ? [] : policy.errors)]);
  const combined = ownPolicy ? { config: head.config, errors: [] } : combineConfigs(head.config, policy.config, CONFIG_FILE, head.positions);
  const refused = operatorRuleErrors(policy.positions ?? new Map(), reviewedFile, rules);
  if (!combined.config || refused.length) return failed([...combined.errors, ...refused]);
  const config = capByOperator(combined.config, rules);
  const pr = opts.pr;
  const policyChanges = ownPolicy ? [] : policyChangesOf(head.config, policy.config);
  // The root project as listed, or implied by the defaults; then its `when` rules for this PR.
  const root =
    config.projects.find((p) => p.dir === '.' && p.workspace === 'default') ??
    projectsFromDetection([{ name: 'default', dir: '.' }], config.defaults)[0]!;
  const settings = pr ? resolveProject(root, pr) : root;
  return { config, policyChanges, onFailure: settings.onFailure, applyRequirements: settings.applyRequirements };
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
