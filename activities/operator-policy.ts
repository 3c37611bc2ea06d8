// The operator's policy (TERRAPIN_SERVER_CONFIG): what each repository may decide for itself, and how
// repository code (terraform, hooks) is run on this host. Types and defaults only; app/server-policy.ts
// loads and validates the file, activities enforce it.
import { matchesGlob } from 'node:path';
import type { ApplyRequirement } from '../shared/config.ts';

/** Keys of `.terrapin.yml` that decide who may do what or what runs on the host: read from the default branch only. */
export const POLICY_KEYS = [
  'permissions',
  'applyRequirements',
  'when',
  'apply',
  'deployOnPush',
  'lock',
  'onFailure',
  'hooks',
  'env',
  'allowForks',
  'drift',
  'parallelism',
  'replanOnBaseChange',
] as const;
export type PolicyKey = (typeof POLICY_KEYS)[number];

/** What the operator lets the repositories matching `match` do. Later matching rules override earlier ones, key by key. */
export interface RepositoryRule {
  /** Globs of `owner/repo`, case-insensitive. */
  match: string[];
  /** Apply requirements no repository setting can drop (default `[approved]`). */
  requiredApplyRequirements?: ApplyRequirement[];
  /** The policy keys the repository's `.terrapin.yml` may set at all (default: every one). */
  allowedPolicyKeys?: PolicyKey[];
  /** Whether repository hooks run (default true: they come from the reviewed default branch and run in the sandbox). */
  allowHooks?: boolean;
  /** Whether the repository's `env` is passed on (default true, within `envAllowlist` and never the process's plumbing). */
  allowEnv?: boolean;
  /** Globs of `env` names a repository may set (default: any name that is not plumbing). */
  envAllowlist?: string[];
  /** Globs of base branches whose PRs are planned, applied and deployed (default: the repository's default branch). */
  allowedBaseBranches?: string[];
  /** Whether the repository may set `allowForks: true` (default false). */
  allowForks?: boolean;
  /** Upper bound on the repository's `parallelism`. */
  maxParallelism?: number;
}

/** How terraform and hooks are run (see activities/sandbox.ts). */
export interface RunnerSettings {
  /**
   * `auto`: bubblewrap when it works on this host, otherwise repository code is refused with a clear message;
   * `bubblewrap`: the same, but a worker that cannot sandbox refuses to start; `none`: no sandbox (operator opt-out).
   */
  sandbox: 'auto' | 'bubblewrap' | 'none';
  /** Host paths terraform and hooks may see besides their own run's directories (local state dirs, CA bundles). */
  paths: Array<{ path: string; writable: boolean }>;
  /**
   * `private` (default): repository code gets its own network namespace with a way out to the internet but none
   * to this host's loopback (the embedded Temporal, local services); needs slirp4netns. `host`: the host's
   * network, for operators whose Temporal and local services require authentication anyway.
   */
  network?: 'private' | 'host';
}

export interface OperatorPolicy {
  repositories: RepositoryRule[];
  runner: RunnerSettings;
}

/** The effective rules for one repository: every default filled in. */
export interface EffectiveRules {
  requiredApplyRequirements: ApplyRequirement[];
  allowedPolicyKeys: PolicyKey[];
  allowHooks: boolean;
  allowEnv: boolean;
  envAllowlist: string[];
  /** Empty: the default branch only. */
  allowedBaseBranches: string[];
  allowForks: boolean;
  maxParallelism?: number;
  /** For messages: the `match` of the rule that set each key (absent: the default). */
  decidedBy?: Partial<Record<keyof Omit<EffectiveRules, 'decidedBy'>, string>>;
}

export const DEFAULT_OPERATOR_POLICY: OperatorPolicy = {
  repositories: [],
  runner: { sandbox: 'auto', paths: [] },
};

/** What every repository gets when no rule says otherwise. */
export function defaultRules(): EffectiveRules {
  return {
    requiredApplyRequirements: [{ kind: 'approved', count: 1, users: [], teams: [] }],
    allowedPolicyKeys: [...POLICY_KEYS],
    allowHooks: true,
    allowEnv: true,
    envAllowlist: [],
    allowedBaseBranches: [],
    allowForks: false,
    decidedBy: {},
  };
}

const RULE_KEYS = [
  'requiredApplyRequirements',
  'allowedPolicyKeys',
  'allowHooks',
  'allowEnv',
  'envAllowlist',
  'allowedBaseBranches',
  'allowForks',
  'maxParallelism',
] as const satisfies readonly (keyof RepositoryRule & keyof EffectiveRules)[];

/** Does `repository` (`owner/repo`) match one of the globs? Case-insensitive, as GitHub names are. */
export function repositoryMatches(globs: readonly string[], repository: string): boolean {
  const name = repository.toLowerCase();
  return globs.some((g) => matchesGlob(name, g.toLowerCase()));
}

/** The rules for one repository: the defaults, then every matching rule in order, each overriding key by key. */
export function effectiveRules(policy: OperatorPolicy, repository: string): EffectiveRules {
  const out = defaultRules();
  for (const rule of policy.repositories) {
    if (!repositoryMatches(rule.match, repository)) continue;
    const label = rule.match.map((m) => JSON.stringify(m)).join(', ');
    for (const key of RULE_KEYS) {
      if (rule[key] === undefined) continue;
      (out as unknown as Record<string, unknown>)[key] = structuredClone(rule[key]);
      out.decidedBy![key] = label;
    }
  }
  return out;
}

/** Is `baseBranch` one a PR may target? With no globs, only the default branch. */
export function baseBranchAllowed(rules: EffectiveRules, baseBranch: string, defaultBranch: string | undefined): boolean {
  if (rules.allowedBaseBranches.length === 0) return defaultBranch !== undefined && baseBranch === defaultBranch;
  return rules.allowedBaseBranches.some((glob) => matchesGlob(baseBranch, glob));
}
