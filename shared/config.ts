// The shapes `.terrapin.yml` resolves to. Every default is filled in, so callers never guess.
export type TerraformBinary = 'terraform' | 'tofu';
export type OnFailure = 'rollback' | 'none';
export type LockMode = 'onPlan' | 'onApply' | 'off';
export type ApplyMode = 'beforeMerge' | 'afterMerge';

/** One entry of `applyRequirements`, normalised: the string `approved` becomes `{ kind: 'approved', count: 1, … }`. */
export type ApplyRequirement =
  | { kind: 'approved'; count: number; users: string[]; teams: string[] }
  | { kind: 'mergeable' }
  | { kind: 'undiverged' }
  | { kind: 'destroyNeeds'; approvals: number };

export interface Hooks {
  prePlan: string[];
  postPlan: string[];
  preApply: string[];
  postApply: string[];
}

/** `vpc_id: network.outputs.vpc_id` → `{ project: 'network', output: 'vpc_id' }`. */
export interface InputRef {
  project: string;
  output: string;
}

/** Overrides that apply when every condition given matches the PR. */
export interface WhenRule {
  baseBranch?: string;
  label?: string;
  applyRequirements?: ApplyRequirement[];
  onFailure?: OnFailure;
}

export interface DriftSettings {
  schedule: string;
  reconcile: boolean;
}

export interface AutoplanSettings {
  enabled: boolean;
  whenModified: string[];
}

/** Every project key except `name` and `dir`: what `defaults` can set. */
export interface ProjectSettings {
  workspace: string;
  terraform: TerraformBinary;
  autoplan: AutoplanSettings;
  dependsOn: string[];
  inputs: Record<string, InputRef>;
  applyRequirements: ApplyRequirement[];
  onFailure: OnFailure;
  lock: LockMode;
  apply: ApplyMode;
  hooks: Hooks;
  env: Record<string, string>;
  when: WhenRule[];
  /** Absent unless configured. */
  drift?: DriftSettings;
}

export interface ResolvedProject extends ProjectSettings {
  name: string;
  /** Relative to the repository root, normalised; `.` is the root. */
  dir: string;
  /** The policy checks run after this project's plan (operator's and allowed repository ones); absent: none. */
  policies?: PolicyCheck[];
  /** The reviewed (default branch) commit whose files the checks run in: never the PR's own. */
  policiesAt?: string;
}

/** A command run against a plan's JSON after each plan (activities/policy-checks.ts); exit 0 passes. */
export interface PolicyCheck {
  name: string;
  /** A shell command (`sh -c`), run in the sandbox with PLAN_JSON, PROJECT, DIR and WORKSPACE set. */
  run: string;
  /** Globs of the project names it checks (default `*`). */
  projects: string[];
}

export interface RepoConfig {
  version: 1;
  /** Max concurrent terraform runs. */
  parallelism: number;
  /** The defaults every project got, filled in; also what auto-detected projects get. */
  defaults: ProjectSettings;
  /** As written, with defaults merged and `inputs`' implied `dependsOn` added. */
  projects: ResolvedProject[];
  /** False when the file has no `projects` key: the caller detects projects from the changed files. */
  projectsListed: boolean;
  /** Whether pull requests from forks are planned. Only the base branch's copy of the file counts. */
  allowForks: boolean;
  /** A push to the default branch that no merged PR made deploys its `apply: afterMerge` projects too. */
  deployOnPush: boolean;
  /** Who may run each command. Only the base branch's copy counts. */
  permissions: CommandPermissions;
  /** `lock.ttl`: how long a lock is held at most ("30m", "12h", "7d"); absent: no limit. Default branch only. */
  lockTtl?: string;
  /** `replanOnBaseChange.concurrency`: open PRs re-planned at once when their base moves (default 2). Default branch only. */
  replanConcurrency: number;
  /** `policies`: checks run on every plan, when the operator allows repository policies (default []). Default branch only. */
  policies: PolicyCheck[];
}

export type PermissionLevel = 'read' | 'write' | 'admin';
export type GuardedCommand = 'plan' | 'approve' | 'apply' | 'unlock';

export interface CommandRule {
  level: PermissionLevel;
  /** When either list is given, the user must be in `users` or in one of `teams` (org/slug). */
  users: string[];
  teams: string[];
  /** Whether the PR's author may run it (`approve` defaults to false: nobody approves their own plan). */
  allowAuthor: boolean;
}

export type CommandPermissions = Record<GuardedCommand, CommandRule>;

export interface ConfigError {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** Where in the document, e.g. `projects[1].dir`; empty for syntax errors. */
  path: string;
  message: string;
}

/** Settings as written in one place (a project or `defaults`): only the keys given. */
export interface WrittenSettings {
  workspace?: string;
  terraform?: TerraformBinary;
  autoplan?: Partial<AutoplanSettings>;
  dependsOn?: string[];
  inputs?: Record<string, InputRef>;
  applyRequirements?: ApplyRequirement[];
  onFailure?: OnFailure;
  lock?: LockMode;
  apply?: ApplyMode;
  hooks?: Partial<Hooks>;
  env?: Record<string, string>;
  when?: WhenRule[];
  drift?: Partial<DriftSettings>;
}

/** `replanOnBaseChange.concurrency` when `.terrapin.yml` does not say. */
export const DEFAULT_REPLAN_CONCURRENCY = 2;
