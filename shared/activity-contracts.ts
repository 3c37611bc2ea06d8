// Inputs and results of the activities, shared with the workflow (types only).
// Large text (plan output, apply logs) never travels through workflow history: activities write it to
// files under the data dir and pass paths; the comment activity reads them when rendering.
import type { RepoRef } from './contracts.ts';
import type { ApplyRequirement, CommandPermissions, ResolvedProject, OnFailure, TerraformBinary } from './config.ts';

export type { OnFailure, TerraformBinary };

/** A commit in its own work dir, and nothing more (no `.terrapin.yml`, no projects). */
export interface CheckoutInput {
  repo: RepoRef;
  prNumber: number;
  /** Clone URL to fetch from (the head repo for PR heads, the base repo for rollbacks). */
  cloneUrl: string;
  /** Exact commit to check out. Exactly one of sha / branch. */
  sha?: string;
  /** Branch to check out at its current head (rollback to the base branch); 'HEAD' is the default branch. */
  branch?: string;
  /**
   * Check out the commit merged into this base commit (a PR's base branch head, from the base repository),
   * or into the named base branch's head now: what merging the PR would make, not the head alone.
   */
  mergeInto?: { sha: string } | { branch: string };
}

export interface CheckoutResult {
  /** One work dir per PR and SHA: <data>/work/<owner>/<repo>/pr-<n>/<sha> (merged: <sha>+<base sha>). */
  workDir: string;
  sha: string;
  /** With mergeInto: the base commit merged into, and the local merge commit checked out. */
  baseSha?: string;
  mergeSha?: string;
  /** With mergeInto: the files that conflict (nothing is checked out, workDir is ''). */
  conflicts?: string[];
}

/** What selectProjects reads: a commit's work dir, its `.terrapin.yml` and the projects a change affects. */
export interface SelectProjectsInput extends CheckoutInput {
  /** Also list the repository's projects (allProjects) without comparing with a base. */
  listProjects?: boolean;
  /** What `when` conditions in .terrapin.yml match on. */
  pr?: { baseBranch: string; labels: readonly string[] };
  /** Compare with this commit to find the changed files and the projects they affect. */
  baseSha?: string;
  /** Without baseSha: compare with the commit's first parent (what a merge changed on its branch). */
  compareWithParent?: boolean;
  /**
   * Where `.terrapin.yml`'s policy keys are read: the default branch's head (the default), or the commit
   * itself — only for commits already on the default branch (a merge's first parent, a drift offer).
   */
  policyFrom?: 'default-branch' | 'commit';
}

export interface ProjectSelection extends CheckoutResult {
  /** From `.terrapin.yml` at that commit: the root project's onFailure. */
  onFailure: OnFailure;
  /** Every problem found in `.terrapin.yml` ("file:line:col: path: message"); the plan must not run. */
  configErrors?: string[];
  /** The root project's apply requirements, `when` overrides applied (absent: the default, one approval). */
  applyRequirements?: ApplyRequirement[];
  /** With baseSha: the projects the PR affects, and every project known (for /plan -p and -d). */
  projects?: ResolvedProject[];
  allProjects?: ResolvedProject[];
  /** Most terraform runs at once (.terrapin.yml `parallelism`, default the CPU count). */
  parallelism?: number;
  /** `allowForks` of the default branch's .terrapin.yml, if the operator allows forks at all. */
  allowForks?: boolean;
  /** `permissions` of the default branch's .terrapin.yml. */
  permissions?: CommandPermissions;
  /** `deployOnPush` of the default branch's .terrapin.yml. */
  deployOnPush?: boolean;
  /** `replanOnBaseChange.concurrency` of the default branch's .terrapin.yml. */
  replanConcurrency?: number;
  /** With baseSha: files that differ from it (undefined when it could not be fetched). */
  changedFiles?: string[];
  /** The commit the policy keys were read at: the default branch's head (or the commit, with policyFrom 'commit'). */
  policySha?: string;
  /** The repository's default branch (absent with policyFrom 'commit'). */
  defaultBranch?: string;
  /** With `pr`: whether its base branch is one the operator lets PRs target (default: the default branch only). */
  baseAllowed?: boolean;
  /** With `pr`: the base branches (globs) the operator lets PRs target; the default branch when it names none. */
  allowedBaseBranches?: string[];
  /** Policy keys this commit's `.terrapin.yml` changes compared with the default branch's: they take effect after merge. */
  policyChanges?: string[];
}

/** One file of the base repository at a revision, read from git objects (no work tree). */
export interface ReadFileAtInput {
  repo: RepoRef;
  /** A full commit sha, or 'HEAD': the default branch's head. */
  ref: string;
  /** Relative to the repository root, `/`-separated. */
  path: string;
}

export interface FileAtRevision {
  /** The commit read (the default branch's head, for 'HEAD'). */
  sha: string;
  /** The default branch's name, for 'HEAD'. */
  branch?: string;
  /** The file's text; absent when there is no such file, or it was refused. */
  text?: string;
  /** Why the entry was not read: a symbolic link, not a regular file, or over the size limit. */
  refused?: string;
}

export interface PolicyAtInput {
  repo: RepoRef;
  /** The PR asking, as Temporal shows the activity's input: the policy itself is the repository's, whoever asks. */
  prNumber: number;
  pr: { baseBranch: string; labels: readonly string[] };
}

/** What the default branch's (reviewed) `.terrapin.yml` and the operator decide for a PR. */
export interface DefaultBranchPolicy {
  /** The default branch's head the policy was read at. */
  sha: string;
  branch?: string;
  permissions: CommandPermissions;
  allowForks: boolean;
  /** Whether the PR's base branch may be planned, applied and deployed at all. */
  baseAllowed: boolean;
  /** The branches (globs) PRs may target, for the refusal. */
  allowedBaseBranches: string[];
  /** `lock.ttl` ("12h"): a lock held that long without activity on its PR is released. Absent: no TTL. */
  lockTtl?: string;
  /** Who may `/approve-policies` (the operator's policyOwners; absent or empty: nobody). */
  policyOwners?: { users: string[]; teams: string[] };
}

export interface PermissionsAtInput {
  repo: RepoRef;
  /** A commit already on the default branch (a merge's first parent, a drift offer). */
  sha: string;
}

export interface PlanSummary {
  add: number;
  change: number;
  destroy: number;
  import: number;
  outputsChanged: boolean;
  /** True when applying would change anything (resources or outputs). */
  hasChanges: boolean;
  /** "Plan: 2 to add, 1 to change, 0 to destroy." or "No changes." */
  line: string;
}

/** Where a project's terraform runs. */
export interface ProjectTarget {
  workDir: string;
  /** Project dir relative to workDir ('.' for the root). */
  projectDir: string;
  workspace: string;
  binary: TerraformBinary;
  /**
   * Keeps this run's files (plan, logs, .terraform) apart from other runs of the same project in the same
   * work dir, e.g. one label per plan: a re-plan never overwrites the plan that was approved. Apply and
   * readOutputs take the label of the plan they belong to.
   */
  label?: string;
}

/**
 * A variable fed from another project's output (`inputs` in .terrapin.yml), passed as TF_VAR_<variable>.
 * Values stay in the upstream's outputs file (data dir): they never travel through workflow history.
 */
export interface OutputInput {
  variable: string;
  /** The upstream's outputs file, from readOutputs (at plan) or a successful apply. */
  outputsFile: string;
  output: string;
  /** The upstream project's name, for messages. */
  project: string;
}

/** `.terrapin.yml` hooks and env of a project, and what the hooks are told about the run. */
export interface ProjectRunSettings {
  /** Shell commands run in the project dir before and after the terraform step. */
  hooks?: { before: string[]; after: string[] };
  /** The project's `env`: for terraform and the hooks. */
  env?: Record<string, string>;
  /** PROJECT, DIR, WORKSPACE, HEAD_SHA, BASE_SHA, PR_NUMBER: for the hooks (PLANFILE is added). */
  hookEnv?: Record<string, string>;
}

export interface PlanInput extends ProjectTarget, ProjectRunSettings {
  extraArgs?: string[];
  inputs?: OutputInput[];
}

export type PlanResult =
  | {
      ok: true;
      /** Absolute path of the saved plan (`terraform plan -out`). */
      planFile: string;
      /** sha256 of the plan file, recorded in the workflow and checked before apply. */
      planSha256: string;
      summary: PlanSummary;
      /** File holding the human plan text, already formatted for a ```diff block. */
      planTextFile: string;
      /** `terraform show -json` of the plan, to compare resource actions with another plan. */
      showJsonFile: string;
      /** The same three in the artifact store, by sha256 (any worker can fetch them; planSha256 names the plan). */
      stored?: PlanArtifacts;
    }
  | {
      ok: false;
      /** The terraform command that failed. */
      step: PlanStep;
      /** File holding the combined output of the failed command. */
      outputFile: string;
      exitCode: number;
    };

export type PlanStep = 'sandbox' | 'inputs' | 'prePlan' | 'init' | 'workspace' | 'plan' | 'show' | 'postPlan';

export interface ApplyInput extends ProjectTarget, ProjectRunSettings {
  planFile: string;
  expectedSha256: string;
  /** The inputs the plan was made with: only so their sensitive values are scrubbed from the log. */
  inputs?: OutputInput[];
}

/**
 * Apply never retries. A plan file that is missing or whose hash differs throws a non-retryable
 * ApplicationFailure of type 'PlanMissing' or 'PlanMismatch'.
 */
/** What a plan left in the artifact store besides the plan file itself (stored under planSha256). */
export interface PlanArtifacts {
  planTextSha256: string;
  showJsonSha256: string;
}

export interface ApplyResult {
  ok: boolean;
  exitCode: number;
  outputFile: string;
  /** The apply log in the artifact store. */
  outputSha256?: string;
  /** After a successful apply: `terraform output -json`, for downstream projects. */
  outputsFile?: string;
}

export interface OutputsResult {
  /** `terraform output -json` of the project's current state (mode 0600: it holds sensitive values). */
  outputsFile: string;
}

export interface CleanupInput {
  repo: RepoRef;
  prNumber: number;
}

/** A comment or check-run text is rendered from comment-templates/<template>.md.hbs. */
export interface RenderRequest {
  template: string;
  data: Record<string, unknown>;
  /** data key → file path; each file's text is loaded into data[key] before rendering (`changeSummary`: a plan's `show -json` file, loaded as its change summary). */
  files?: Record<string, string>;
}
