// A commit's work dir with its `.terrapin.yml` read and its projects selected: the description (projects,
// dirs, …) from the commit, the policy from the reviewed copy on the default branch, within the operator's
// rules; with a base, the files and projects the change affects.
import { availableParallelism } from 'node:os';
import type { OnFailure, ProjectSelection, SelectProjectsInput } from '../shared/activity-contracts.ts';
import { SHA, checkout, gitFailure, gitRunner, prWorkRoot, remoteGit, resolveDefaultBranch, type GitDeps, type GitRunner } from './git.ts';
import { entryRefusal, readBlob, treeEntries } from './repo-files.ts';
import { CONFIG_FILE, formatConfigError, parseRepoConfigFile, projectsFromDetection, resolveProject, type ParseResult, type PullRequestFacts } from './repo-config/index.ts';
import type { ApplyRequirement, ConfigError, RepoConfig } from '../shared/config.ts';
import { capByOperator, combineConfigs, operatorRuleErrors, policyChanges as policyChangesOf } from './repo-config/policy.ts';
import { baseBranchAllowed, DEFAULT_OPERATOR_POLICY, effectiveRules, type EffectiveRules } from './operator-policy.ts';
import { selectProjects as affectedProjects } from './project-selection.ts';

/** Checks the commit out (reusing its work dir) and reads what `.terrapin.yml` and the change decide. */
export async function selectProjects(input: SelectProjectsInput, deps: GitDeps): Promise<ProjectSelection> {
  const { workDir, sha } = await checkout({ repo: input.repo, prNumber: input.prNumber, cloneUrl: input.cloneUrl, sha: input.sha, branch: input.branch }, deps);
  const root = prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber);
  const local = gitRunner(undefined);
  const remote = remoteGit(deps, input.repo, [input.cloneUrl, input.repo.cloneUrl]);
  const rules = effectiveRules(deps.operatorPolicy ?? DEFAULT_OPERATOR_POLICY, `${input.repo.owner}/${input.repo.name}`);
  const reviewed = await reviewedCommit(remote, root, workDir, input, sha);
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
  const { config, policyChanges, ...settings } = await readRepoConfig(local, workDir, { sha, reviewed, rules, pr: input.pr });
  const baseSha = input.baseSha ?? (input.compareWithParent ? await firstParent(local, workDir, sha) : undefined);
  if ((!baseSha && !input.listProjects) || !config) {
    return { workDir, sha, ...settings, ...policy, allowForks: config?.allowForks ?? false, ...(config ? { permissions: config.permissions, policyChanges } : {}) };
  }
  const changedFiles = baseSha ? await diffAgainstBase(remote, workDir, input.cloneUrl, baseSha.toLowerCase(), sha) : undefined;
  const listed = await local(workDir, 'ls-files', '-z');
  if (listed.exitCode !== 0) throw gitFailure('git ls-files', listed);
  const selection = await affectedProjects({ workDir, config, repoFiles: listed.stdout.split('\0').filter(Boolean), changedFiles, pr: input.pr });
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

interface ReviewedCommit {
  sha: string;
  /** The default branch's name (absent when the caller named the commit itself). */
  branch?: string;
}

/** The commit whose `.terrapin.yml` policy counts: the default branch's head (or, when asked, the commit itself). */
async function reviewedCommit(git: GitRunner, root: string, workDir: string, input: SelectProjectsInput, sha: string): Promise<ReviewedCommit> {
  if (input.policyFrom === 'commit') return { sha };
  // Always the base repository's URL: a fork's "default branch" is the fork author's.
  const head = await resolveDefaultBranch(git, root, input.repo.cloneUrl);
  if (head.sha !== sha) {
    const fetched = await git(workDir, 'fetch', '-q', '--depth', '1', '--no-tags', '--', input.repo.cloneUrl, head.sha);
    if (fetched.exitCode !== 0) throw gitFailure(`git fetch of the default branch (${head.sha})`, fetched);
  }
  return head;
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

/**
 * `.terrapin.yml` at a commit of a work dir, from the git objects (never the work tree, where a symlink
 * would lead anywhere): only a regular file under the size cap. No file means the defaults, which an
 * empty file gives.
 */
export async function readConfigBlob(git: GitRunner, workDir: string, sha: string, file: string): Promise<{ text: string } | { error: ConfigError }> {
  const listed = await git(workDir, 'ls-tree', '-l', '-z', sha, '--', CONFIG_FILE);
  if (listed.exitCode !== 0) throw gitFailure(`git ls-tree of ${sha}`, listed);
  const entry = treeEntries(listed.stdout).find((e) => e.path === CONFIG_FILE);
  if (!entry) return { text: '' };
  const refused = entryRefusal(CONFIG_FILE, entry, entry.size);
  if (refused) return { error: { file, line: 1, column: 1, path: '', message: refused } };
  return { text: await readBlob(git, workDir, entry.oid, entry.size!) };
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
