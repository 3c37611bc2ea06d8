// A commit's work dir with its `.terrapin.yml` read and its projects selected: the description (projects,
// dirs, …) from the commit, the policy from the reviewed copy on the default branch, within the operator's
// rules; with a base, the files and projects the change affects.
import { availableParallelism } from 'node:os';
import type { OnFailure, ProjectSelection, SelectProjectsInput } from '../shared/activity-contracts.ts';
import { mkdir } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import {
  SHA,
  checkoutDetached,
  fetchCommit,
  fetchShallow,
  gitFailure,
  gitRunner,
  initWorkDir,
  makeWorkDir,
  prWorkRoot,
  remoteGit,
  resolveBranchHead,
  resolveDefaultBranch,
  type GitDeps,
  type GitRunner,
} from './git.ts';
import { entryRefusal, readBlob, treeEntries, type TreeEntry } from './repo-files.ts';
import { CONFIG_FILE, formatConfigError, parseRepoConfigFile, projectsFromDetection, resolveProject, type ParseResult, type PullRequestFacts } from './repo-config/index.ts';
import type { ApplyRequirement, ConfigError, RepoConfig } from '../shared/config.ts';
import { capByOperator, combineConfigs, operatorRuleErrors, policyChanges as policyChangesOf, withPolicyChecks } from './repo-config/policy.ts';
import { baseBranchAllowed, DEFAULT_OPERATOR_POLICY, effectiveRules, type EffectiveRules } from './operator-policy.ts';
import { selectProjects as affectedProjects } from './project-selection.ts';

/**
 * Checks the commit out (reusing its work dir) and reads what `.terrapin.yml` and the change decide.
 *
 * As few git processes as the answer needs, each as soon as it can start: the default branch's head is
 * asked for while the work dir is initialised (joining policyAt's lookup when the plan asks both at once),
 * one fetch brings the commit, the default branch's head and the base, and the reads of the two
 * `.terrapin.yml`s, of the change and of the file list run side by side.
 */
export async function selectProjects(input: SelectProjectsInput, deps: GitDeps): Promise<ProjectSelection> {
  if (Boolean(input.sha) === Boolean(input.branch)) {
    throw ApplicationFailure.nonRetryable('checkout needs exactly one of sha or branch', 'InvalidInput');
  }
  const root = prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber);
  const local = gitRunner(undefined);
  const remote = remoteGit(deps, input.repo, [input.cloneUrl, input.repo.cloneUrl]);
  const rules = effectiveRules(deps.operatorPolicy ?? DEFAULT_OPERATOR_POLICY, `${input.repo.owner}/${input.repo.name}`);
  await mkdir(root, { recursive: true, mode: 0o700 });

  // The commit whose policy counts: the default branch's head, always from the base repository's URL (a
  // fork's "default branch" is the fork author's); or, when asked, the commit itself.
  const defaultHead = input.policyFrom === 'commit' ? undefined : resolveDefaultBranch(remote, root, input.repo.cloneUrl, String(input.repo.installationId));
  defaultHead?.catch(() => undefined); // awaited below; not unhandled if something else fails first
  const sha = (
    input.sha ??
    (input.branch === 'HEAD' && defaultHead && input.cloneUrl === input.repo.cloneUrl ? (await defaultHead).sha : await resolveBranchHead(remote, root, input.cloneUrl, input.branch!))
  ).toLowerCase();
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable(`Not a full commit sha: ${sha}`, 'InvalidInput');
  const reviewed = async (): Promise<ReviewedCommit> => (defaultHead ? await defaultHead : { sha });
  const given = input.baseSha?.toLowerCase();
  // A base that is no commit sha is not compared (every project counts as affected), as one that cannot be fetched.
  const base = given && SHA.test(given) ? given : undefined;

  const compare = Boolean(input.baseSha || input.compareWithParent || input.listProjects);
  /** Everything read from git objects (no work tree needed): both `.terrapin.yml`s, the change, the file list. */
  const readCommits = (dir: string, reviewedCommit: ReviewedCommit, base: string | undefined, checkedOut: Promise<unknown>) => {
    // What the change is compared with (a root commit has no parent: nothing is), and the files it changes.
    const changed = async (): Promise<{ baseSha?: string; files?: string[] }> => {
      if (input.baseSha) return { baseSha: input.baseSha, files: base ? await diffNames(local, dir, base, sha) : undefined };
      if (!input.compareWithParent) return {};
      const parent = await firstParent(local, dir, sha);
      if (!parent) return {};
      // The parent lives where the commit does; fetched once nothing else writes to the repository.
      await checkedOut;
      const got = await fetchShallow(remote, dir, input.cloneUrl, [parent]);
      return { baseSha: parent, files: got.exitCode === 0 ? await diffNames(local, dir, parent, sha) : undefined };
    };
    // Only detection without a project list needs the file list; asked beside the rest all the same (it
    // is the usual case), it also says where the commit's `.terrapin.yml` is.
    const listing = compare ? listTree(local, dir, sha) : undefined;
    listing?.catch(() => undefined);
    return Promise.all([
      readRepoConfig(local, dir, { sha, reviewed: reviewedCommit, rules, pr: input.pr, ...(listing ? { headEntry: listing.then((l) => l.config) } : {}) }),
      changed(),
      listing?.then((l) => l.files),
    ]);
  };

  let read: Awaited<ReturnType<typeof readCommits>> | undefined;
  const workDir = await makeWorkDir(root, sha, async (staging) => {
    // (Each pair settles in full before a failure is thrown: nothing is left running in the staging dir as it is removed.)
    const [, head] = await bothSettled(initWorkDir(local, staging), reviewed());
    const fetched = await fetchCommits(remote, local, staging, input, sha, head.sha, base, true);
    // The reads need only the objects: they run while the commit is checked out, and end before the
    // staging dir is renamed into place. The checkout's failure (a commit not found) is the one reported.
    const checkedOut = checkoutDetached(local, staging, sha);
    [, read] = await bothSettled(checkedOut, readCommits(staging, head, fetched.base, checkedOut));
  });
  if (!read) {
    // A work dir made before (or by a run at the same time): what it lacks is fetched into it.
    const head = await reviewed();
    const fetched = await fetchCommits(remote, local, workDir, input, sha, head.sha, base, false);
    read = await readCommits(workDir, head, fetched.base, Promise.resolve());
  }
  const [settings, { baseSha, files: changedFiles }, repoFiles] = read;
  const policyCommit = await reviewed();
  const policy = {
    policySha: policyCommit.sha,
    ...(policyCommit.branch ? { defaultBranch: policyCommit.branch } : {}),
    ...(input.pr
      ? {
          baseAllowed: baseBranchAllowed(rules, input.pr.baseBranch, policyCommit.branch),
          allowedBaseBranches: rules.allowedBaseBranches.length ? rules.allowedBaseBranches : policyCommit.branch ? [policyCommit.branch] : [],
        }
      : {}),
  };
  const { config, policyChanges, ...rest } = settings;
  if ((!baseSha && !input.listProjects) || !config) {
    return { workDir, sha, ...rest, ...policy, allowForks: config?.allowForks ?? false, ...(config ? { permissions: config.permissions, policyChanges } : {}) };
  }
  const selection = await affectedProjects({ workDir, config, repoFiles: repoFiles!, changedFiles, pr: input.pr });
  return {
    workDir,
    sha,
    ...rest,
    projects: withPolicyChecks(selection.affected, config.policies, policyCommit.sha),
    allProjects: withPolicyChecks(selection.all, config.policies, policyCommit.sha),
    parallelism: config.parallelism,
    changedFiles,
    allowForks: config.allowForks,
    deployOnPush: config.deployOnPush,
    replanConcurrency: config.replanConcurrency,
    permissions: config.permissions,
    ...policy,
    policyChanges,
  };
}

/** Both values once both promises have settled; the first one's failure before the second's. */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

interface ReviewedCommit {
  sha: string;
  /** The default branch's name (absent when the caller named the commit itself). */
  branch?: string;
}

interface Fetched {
  /** The base, when it was asked for and is now in the work dir. */
  base?: string;
}

/**
 * Brings into a work dir what the selection reads: with `withHead`, the commit (from its own clone URL,
 * a fork's for a fork's PR); the default branch's head and the base, from the base repository. One fetch
 * per URL; if it fails, each commit on its own, each as it always was: the commit by every ref if need
 * be, the default branch's head or a failure, the base or no comparison. A work dir that has them all
 * already is not fetched into.
 */
async function fetchCommits(
  git: GitRunner,
  local: GitRunner,
  dir: string,
  input: SelectProjectsInput,
  sha: string,
  reviewed: string,
  base: string | undefined,
  withHead: boolean,
): Promise<Fetched> {
  const wanted = (list: Array<string | undefined>, not: string[]) => [...new Set(list.filter((s): s is string => s !== undefined && !not.includes(s)))];
  let fromBase = wanted([reviewed, base], [sha]);
  if (!withHead) {
    // A work dir used again: only what it lacks, so often nothing and no network at all.
    const present = await Promise.all(fromBase.map(async (s) => (await local(dir, 'cat-file', '-e', `${s}^{commit}`)).exitCode === 0));
    fromBase = fromBase.filter((_, i) => !present[i]);
    if (!fromBase.length) return { base };
  }
  const urls = withHead && input.cloneUrl === input.repo.cloneUrl ? [{ url: input.cloneUrl, shas: [sha, ...fromBase] }] : [
    ...(withHead ? [{ url: input.cloneUrl, shas: [sha] }] : []),
    ...(fromBase.length ? [{ url: input.repo.cloneUrl, shas: fromBase }] : []),
  ];
  let baseFetched = true;
  for (const { url, shas } of urls) {
    if (shas.length > 1 && (await fetchShallow(git, dir, url, shas)).exitCode === 0) continue;
    for (const one of shas) {
      if (withHead && one === sha) {
        await fetchCommit(git, dir, url, sha);
        continue;
      }
      const r = await fetchShallow(git, dir, url, [one]);
      if (r.exitCode === 0) continue;
      if (one === reviewed) throw gitFailure(`git fetch of the default branch (${reviewed})`, r);
      baseFetched = false;
    }
  }
  return { base: base && (baseFetched || base === sha || base === reviewed) ? base : undefined };
}

/** The first parent of a commit (what a branch was before a merge), read from the commit object itself. */
async function firstParent(git: GitRunner, workDir: string, sha: string): Promise<string | undefined> {
  const r = await git(workDir, 'cat-file', '-p', sha);
  if (r.exitCode !== 0) throw gitFailure(`git cat-file of ${sha}`, r);
  return /^parent ([0-9a-f]{40,64})$/m.exec(r.stdout)?.[1];
}

/** Files that differ between two commits in the work dir (the trees, so shallow clones suffice); undefined if git cannot say. */
async function diffNames(git: GitRunner, workDir: string, from: string, to: string): Promise<string[] | undefined> {
  const diff = await git(workDir, 'diff', '--name-only', '-z', '--no-renames', from, to);
  return diff.exitCode === 0 ? diff.stdout.split('\0').filter(Boolean) : undefined;
}

/**
 * Every file of the commit, as its checkout's index has them (blobs, symlinks and submodules), and
 * `.terrapin.yml`'s entry at its root (no size: `ls-tree -l` would weigh every blob of the tree).
 */
async function listTree(git: GitRunner, workDir: string, sha: string): Promise<{ files: string[]; config?: TreeEntry }> {
  // -t: trees too, so that a directory named `.terrapin.yml` is seen as one.
  const listed = await git(workDir, 'ls-tree', '-r', '-t', '-z', '--full-tree', sha);
  if (listed.exitCode !== 0) throw gitFailure(`git ls-tree of ${sha}`, listed);
  const entries = treeEntries(listed.stdout);
  return { files: entries.filter((e) => e.type !== 'tree').map((e) => e.path), config: entries.find((e) => e.path === CONFIG_FILE) };
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

/** `.terrapin.yml`'s entry in a commit's root tree, with its size; undefined when the commit has none. */
async function configEntry(git: GitRunner, workDir: string, sha: string): Promise<TreeEntry | undefined> {
  const listed = await git(workDir, 'ls-tree', '-l', '-z', sha, '--', CONFIG_FILE);
  if (listed.exitCode !== 0) throw gitFailure(`git ls-tree of ${sha}`, listed);
  return treeEntries(listed.stdout).find((e) => e.path === CONFIG_FILE);
}

/**
 * `.terrapin.yml` from its tree entry in the git objects (never the work tree, where a symlink would lead
 * anywhere): only a regular file under the size cap. No file means the defaults, which an empty file gives.
 */
async function configText(entry: TreeEntry | undefined, file: string, sizeOf: (oid: string) => Promise<number>, blob: (oid: string, size: number) => Promise<string>): Promise<{ text: string } | { error: ConfigError }> {
  if (!entry) return { text: '' };
  const refusal = (message: string) => ({ error: { file, line: 1, column: 1, path: '', message } });
  const byKind = entryRefusal(CONFIG_FILE, entry);
  if (byKind) return refusal(byKind);
  const size = entry.size ?? (await sizeOf(entry.oid));
  const bySize = entryRefusal(CONFIG_FILE, entry, size);
  if (bySize) return refusal(bySize);
  return { text: await blob(entry.oid, size) };
}

function parseText(read: { text: string } | { error: ConfigError }, file: string): ParseResult {
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
  opts: {
    sha: string;
    reviewed: ReviewedCommit;
    rules: EffectiveRules;
    pr?: PullRequestFacts;
    /** `.terrapin.yml`'s entry at `sha`, when a listing of the whole tree already has it (its size may be unknown). */
    headEntry?: Promise<TreeEntry | undefined>;
  },
): Promise<RepoSettings> {
  const { sha, reviewed, rules } = opts;
  const ownPolicy = reviewed.sha === sha;
  // The reviewed copy's errors name it by branch and commit, `main@1a2b3c4:.terrapin.yml:3:5`, like git's rev:path.
  const reviewedFile = ownPolicy ? CONFIG_FILE : `${reviewed.branch ?? 'default branch'}@${reviewed.sha.slice(0, 7)}:${CONFIG_FILE}`;
  const headEntry = opts.headEntry ?? configEntry(git, workDir, sha);
  const reviewedEntry = ownPolicy ? headEntry : configEntry(git, workDir, reviewed.sha);
  headEntry.catch(() => undefined);
  reviewedEntry.catch(() => undefined);
  // A blob's size from either entry that has it, else from the object; and each blob read once: a PR
  // that leaves `.terrapin.yml` alone has the very same blob as the default branch.
  const sizeOf = async (oid: string): Promise<number> => {
    const known = [await headEntry, await reviewedEntry].find((e) => e?.oid === oid && e.size !== undefined)?.size;
    if (known !== undefined) return known;
    const r = await git(workDir, 'cat-file', '-s', oid);
    if (r.exitCode !== 0) throw gitFailure(`git cat-file of ${oid}`, r);
    return Number(r.stdout.trim());
  };
  const blobs = new Map<string, Promise<string>>();
  const blob = (oid: string, size: number) => {
    let text = blobs.get(oid);
    if (!text) blobs.set(oid, (text = readBlob(git, workDir, oid, size)));
    return text;
  };
  const parse = async (entry: Promise<TreeEntry | undefined>, file: string) => parseText(await configText(await entry, file, sizeOf, blob), file);
  const [head, reviewedParse] = await Promise.all([parse(headEntry, CONFIG_FILE), ownPolicy ? undefined : parse(reviewedEntry, reviewedFile)]);
  const policy = reviewedParse ?? head;
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
