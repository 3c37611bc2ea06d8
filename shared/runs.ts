// One run: one operation (plan, apply, rollback, drift check) of one project at one revision. The PR,
// deploy, drift and reconcile workflows start runs as child workflows (workflows/project-run.ts) and
// decide what to do with the small result; the run is also the record: its id and search attributes say
// what ran, for whom, and how it ended.
import type { Hooks, InputRef, PolicyCheck } from './config.ts';
import type { PlanArtifacts, PlanStep, PlanSummary, TerraformBinary } from './activity-contracts.ts';
import type { RepoRef } from './contracts.ts';

export const PROJECT_RUN_WORKFLOW_TYPE = 'projectRun';

/** A plan's resource counts, as a run's record keeps them (+/~/−). */
export type RunCounts = Pick<PlanSummary, 'add' | 'change' | 'destroy'>;
export const runCounts = ({ add, change, destroy }: RunCounts): RunCounts => ({ add, change, destroy });

/** Where a run's live log is (activities/live-log.ts writes it, `terrapin logs --follow` reads it): one file per run id. */
export const liveLogFile = (dataDir: string, runId: string): string => `${dataDir.replace(/\/+$/, '')}/live/${encodeURIComponent(runId)}.log`;

export type RunKind = 'plan' | 'apply' | 'rollback' | 'destroy' | 'drift';
export type RunTrigger = 'pr' | 'merge' | 'push' | 'drift' | 'manual';

/** run:{owner}/{repo}:{project}:{kind}:{sha7}-{n}; n counts the starter's runs (see startRun). */
export const runWorkflowId = (repo: { owner: string; name: string }, project: string, kind: RunKind, sha: string, n: number): string =>
  `run:${repo.owner}/${repo.name}:${project}:${kind}:${sha.slice(0, 7)}-${n}`;

/** Where a project lives in a revision: enough to run terraform there or read its outputs. */
export interface ProjectLocation {
  name: string;
  dir: string;
  workspace: string;
  binary: TerraformBinary;
}

/** A project as a run needs it: where it is, and what `.terrapin.yml` says about running it. */
export interface RunProject extends ProjectLocation {
  env: Record<string, string>;
  hooks: Hooks;
  /** `inputs`: variables fed from upstream projects' outputs. */
  inputs: Record<string, InputRef>;
  /** plan: the policy checks run against the plan (absent: none)... */
  policies?: PolicyCheck[];
  /** ...in the files of this reviewed commit of the base repository (absent: no files at all). */
  policiesAt?: string;
}

/** One policy check's verdict on a plan; the findings stay on disk (they may quote the plan). */
export interface PolicyOutcome {
  name: string;
  passed: boolean;
  /** The check's scrubbed, length-capped output (or why it could not run). */
  findingsFile?: string;
  exitCode?: number;
  /** Why the checks could not run at all (no findings then). */
  error?: string;
}

/** The PR or merge a run belongs to, for the record and the hooks. */
export interface RunRecordInput {
  trigger: RunTrigger;
  pr?: number;
  /** Who asked: the PR's pusher or commenter, the merger, the pusher, the `/drift` commenter. */
  actor?: string;
  approvers?: string[];
}

export interface RunInput {
  repo: RepoRef;
  kind: RunKind;
  record: RunRecordInput;
  /** Whether the namespace has Terrapin's search attributes (asked once by the starter). */
  recorded: boolean;
  /**
   * The commit to check out: PR heads come from the head repository's clone URL. With `mergeInto` (a PR's
   * plans and applies), the head merged into that base commit: what merging the PR would make.
   */
  source: { prNumber: number; cloneUrl: string; sha?: string; branch?: string; mergeInto?: { sha: string } };
  project: RunProject;
  /** Every project of the revision: where upstreams named by `inputs` live. */
  known: ProjectLocation[];
  /** Upstream outputs this operation already produced (an upstream applied earlier in it), by project. */
  upstreamOutputs?: Record<string, string>;
  /** Keeps this run's files apart from other runs of the project in the same work dir. */
  label: string;
  /** The hooks' BASE_SHA. */
  baseSha?: string;
  /** plan: arguments after `--`, already checked against the allowlist. */
  extraArgs?: string[];
  /** apply: the saved plan, by hash; with its counts, the run's record says what it applied. */
  plan?: { planFile: string; planSha256: string; counts?: RunCounts };
  /** apply: plan again first (upstreams changed since) and apply only if the resource actions and values are these. */
  replanAgainst?: { showJsonFile: string; planTextFile: string };
  /**
   * apply: plan first and apply that plan, with no approved plan to compare it with (local runs with
   * `--auto-approve` only, where the user approved whatever the plan says; the hash check still holds).
   */
  planFirst?: boolean;
  /** apply: read the project's outputs before applying (downstreams roll back with them). */
  keepOutputsBefore?: boolean;
  /** rollback: take the project's settings from `.terrapin.yml` at the target revision. */
  settingsFromTarget?: boolean;
}

export type RunOutcome =
  | 'planned'
  | 'no-changes'
  | 'failed'
  | 'applied'
  | 'apply-failed'
  | 'stale'
  | 'unknown'
  | 'changed'
  | 'rolled-back'
  | 'rollback-failed'
  | 'drifted'
  | 'clean'
  | 'no-project'
  | 'conflict';

/**
 * A saved plan: the file applied, its hash, and what reviewers saw. The hash is the truth: the plan file
 * (and, in `stored`, the text and JSON) are in the artifact store, and the paths are only one worker's
 * cache of them (any worker may delete its work dirs at any time).
 */
export interface SavedPlan {
  planFile: string;
  planSha256: string;
  summary: PlanSummary;
  planTextFile: string;
  showJsonFile: string;
  stored?: PlanArtifacts;
}

export interface RunResult {
  runId: string;
  kind: RunKind;
  project: string;
  /** The commit the run checked out (with source.mergeInto: the PR head merged into baseSha). */
  sha: string;
  /** With source.mergeInto: the base commit the head was merged into, and the local merge commit. */
  baseSha?: string;
  mergeSha?: string;
  /** 'conflict': the files the head and the base both changed, in ways git cannot merge. */
  conflicts?: string[];
  workDir: string;
  label: string;
  outcome: RunOutcome;
  /** plan (and apply's re-plan): the saved plan. */
  plan?: SavedPlan;
  /** plan with changes and policy checks: each check's verdict, in the configured order. */
  policies?: PolicyOutcome[];
  /** What failed: the step and its (scrubbed) output, or the error when terraform could not run at all. */
  failure?: { step?: PlanStep | 'apply' | 'checkout'; exitCode?: number; outputFile?: string; error?: string };
  /** apply, rollback: the scrubbed log. */
  logFile?: string;
  /** apply: `terraform output -json` after it (mode 0600: sensitive values). */
  outputsFile?: string;
  /** apply with keepOutputsBefore: the outputs before it. */
  outputsBeforeFile?: string;
  /**
   * apply whose worker died mid-way, resolved by a plan afterwards (activities/interrupted-apply.ts):
   * 'applied' with verifiedAfterRestart when the plan found it done; 'unknown' with the fresh plan's text.
   */
  verifiedAfterRestart?: boolean;
  afterRestartPlanTextFile?: string;
  /** apply 'changed': the fresh plan's actions or values differ from the approved ones. */
  changes?: string[];
  diffFile?: string;
  /** drift: what the two plans found; `plan` (its files under `label`) is what a reconcile applies. */
  drift?: {
    resources: string[];
    refreshTextFile?: string;
    plan: { planFile: string; planSha256: string; summary: PlanSummary; planTextFile: string; label: string };
  };
}

/**
 * The end of a run's log, kept in the run's memo (key `logTail`) so any machine can show it from Temporal;
 * the whole file stays on the worker's disk. A memo, not the result: results are copied into the starter's
 * history, and a PR with many projects would carry every tail there too.
 */
export const RUN_LOG_TAIL_MEMO = 'logTail';
export const RUN_LOG_TAIL_BYTES = 16 * 1024;

/** The file that is a run's log: what apply printed, what failed, else the plan it made. */
export function runLogFile(result: RunResult): string | undefined {
  return result.logFile ?? result.failure?.outputFile ?? result.plan?.planTextFile ?? result.drift?.plan.planTextFile;
}
