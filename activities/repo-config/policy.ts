// Description and policy: a PR's `.terrapin.yml` describes its change (projects, dirs, workspaces,
// dependencies, inputs, autoplan, binary), but who may do what and what runs on the host (policy) comes
// only from the copy on the default branch, the reviewed one. Pure: no I/O.
import { matchesGlob } from 'node:path';
import type { ApplyRequirement, ConfigError, ProjectSettings, RepoConfig, ResolvedProject } from '../../shared/config.ts';
import { quote } from './errors.ts';
import type { EffectiveRules, PolicyKey } from '../operator-policy.ts';

/** Policy keys a project (or `defaults`) can set; the rest of POLICY_KEYS are top-level. */
export const PROJECT_POLICY_KEYS = ['applyRequirements', 'when', 'apply', 'lock', 'onFailure', 'hooks', 'env', 'drift'] as const satisfies readonly PolicyKey[];
type ProjectPolicyKey = (typeof PROJECT_POLICY_KEYS)[number];
const TOP_LEVEL_POLICY_KEYS = ['permissions', 'allowForks', 'deployOnPush', 'parallelism'] as const satisfies readonly (PolicyKey & keyof RepoConfig)[];

function withPolicyOf<T extends ProjectSettings>(description: T, policy: ProjectSettings): T {
  const out: T = { ...description };
  for (const key of PROJECT_POLICY_KEYS) {
    if (policy[key] === undefined) delete out[key];
    else (out as ProjectSettings)[key] = structuredClone(policy[key]) as never;
  }
  return out;
}

export type PolicySource = { kind: 'project'; name: string } | { kind: 'defaults' };

/**
 * Whose policy a head project gets: the default branch's project of the same name; failing that, the
 * one at the same dir and workspace (a rename keeps its rules); failing that, the defaults. A project
 * whose name and place belong to two different reviewed projects is an error: it would take one's rules
 * to the other's state.
 */
export function policySourceOf(project: ResolvedProject, reviewed: RepoConfig): PolicySource | { conflict: string } {
  const byName = reviewed.projects.find((p) => p.name === project.name);
  const byPlace = reviewed.projects.find((p) => p.dir === project.dir && p.workspace === project.workspace);
  if (byName && byPlace && byName !== byPlace) return { conflict: byPlace.name };
  const source = byName ?? byPlace;
  return source ? { kind: 'project', name: source.name } : { kind: 'defaults' };
}

export interface CombinedConfig {
  config?: RepoConfig;
  errors: ConfigError[];
}

/** The head's description with the reviewed (default-branch) copy's policy. */
export function combineConfigs(head: RepoConfig, reviewed: RepoConfig, headFile: string, positions?: Map<string, { line: number; column: number }>): CombinedConfig {
  const errors: ConfigError[] = [];
  const projects = head.projects.map((p, index) => {
    const source = policySourceOf(p, reviewed);
    if ('conflict' in source) {
      const at = positions?.get(`projects[${index}].name`) ?? { line: 1, column: 1 };
      errors.push({
        file: headFile,
        ...at,
        path: `projects[${index}].name`,
        message: `project ${quote(p.name)} is at dir ${quote(p.dir)} (workspace ${quote(p.workspace)}), which the default branch calls ${quote(source.conflict)}; a project keeps its name or its place, not both changed at once`,
      });
      return p;
    }
    const policy = source.kind === 'project' ? reviewed.projects.find((x) => x.name === source.name)! : reviewed.defaults;
    return withPolicyOf(p, policy);
  });
  if (errors.length) return { errors };
  return {
    config: {
      ...head,
      defaults: withPolicyOf(head.defaults, reviewed.defaults),
      projects,
      parallelism: reviewed.parallelism,
      allowForks: reviewed.allowForks,
      deployOnPush: reviewed.deployOnPush,
      replanConcurrency: reviewed.replanConcurrency,
      permissions: structuredClone(reviewed.permissions),
    },
    errors,
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The policy keys the head's copy sets differently from the default branch's, as paths
 * (`permissions`, `defaults.applyRequirements`, `projects[app].hooks`): they take effect after merge.
 */
export function policyChanges(head: RepoConfig, reviewed: RepoConfig): string[] {
  const changes: string[] = [];
  for (const key of TOP_LEVEL_POLICY_KEYS) if (!same(head[key], reviewed[key])) changes.push(key);
  const defaultsChanged = new Set<ProjectPolicyKey>();
  for (const key of PROJECT_POLICY_KEYS) {
    if (!same(head.defaults[key], reviewed.defaults[key])) {
      defaultsChanged.add(key);
      changes.push(`defaults.${key}`);
    }
  }
  for (const p of head.projects) {
    const source = policySourceOf(p, reviewed);
    const policy = 'conflict' in source || source.kind === 'defaults' ? reviewed.defaults : reviewed.projects.find((x) => x.name === source.name)!;
    for (const key of PROJECT_POLICY_KEYS) {
      if (same(p[key], policy[key])) continue;
      // Inherited from a changed `defaults`: already listed there.
      if (defaultsChanged.has(key) && same(p[key], head.defaults[key])) continue;
      changes.push(`projects[${p.name}].${key}`);
    }
  }
  return changes;
}

/** Does `have` already ask for at least what `need` asks? */
function covers(have: ApplyRequirement, need: ApplyRequirement): boolean {
  if (have.kind !== need.kind) return false;
  if (need.kind === 'approved' && have.kind === 'approved') {
    const unrestricted = need.users.length === 0 && need.teams.length === 0;
    const sameWho = same([...have.users].sort(), [...need.users].sort()) && same([...have.teams].sort(), [...need.teams].sort());
    return have.count >= need.count && (unrestricted || sameWho);
  }
  if (need.kind === 'destroyNeeds' && have.kind === 'destroyNeeds') return have.approvals >= need.approvals;
  return true;
}

/** The project's requirements plus every operator requirement they do not already cover (after `when` rules). */
export function withRequiredRequirements(requirements: ApplyRequirement[], required: ApplyRequirement[]): ApplyRequirement[] {
  const out = [...requirements];
  for (const need of required) if (!out.some((have) => covers(have, need))) out.push(structuredClone(need));
  return out;
}

/** Adds the operator's requirements to the project's and to every `when` rule's (which replace them). */
export function addRequired<T extends ProjectSettings>(project: T, rules: EffectiveRules): T {
  const required = rules.requiredApplyRequirements;
  return {
    ...project,
    applyRequirements: withRequiredRequirements(project.applyRequirements, required),
    when: project.when.map((rule) => (rule.applyRequirements ? { ...rule, applyRequirements: withRequiredRequirements(rule.applyRequirements, required) } : rule)),
  };
}

const POSITIONED = /^(?:(?<top>[A-Za-z]+)|defaults\.(?<dkey>[A-Za-z]+)|projects\[(?<index>\d+)\]\.(?<pkey>[A-Za-z]+))$/;
const ENV_NAME_PATH = /^(?:defaults|projects\[\d+\])\.env(?:\.(?<plain>[A-Za-z_][A-Za-z0-9_]*)|\[(?<quoted>"[^"]*")\])$/;

/**
 * What the operator's rules forbid in the reviewed copy: policy keys the repository may not set, hooks,
 * `env` or `env` names outside the allowlist. Each error points at the reviewed file; `ruleName` says
 * which operator rule decided.
 */
export function operatorRuleErrors(
  positions: Map<string, { line: number; column: number }>,
  file: string,
  rules: EffectiveRules,
): ConfigError[] {
  const errors: ConfigError[] = [];
  const because = (key: keyof NonNullable<EffectiveRules['decidedBy']>) => `TERRAPIN_SERVER_CONFIG${rules.decidedBy?.[key] ? `, rule for ${rules.decidedBy[key]}` : ''}`;
  for (const [path, at] of positions) {
    const m = POSITIONED.exec(path)?.groups;
    const key = m?.top ?? m?.dkey ?? m?.pkey;
    if (key) {
      if (m?.top && !TOP_LEVEL_POLICY_KEYS.includes(key as never) && key !== 'onFailure' && key !== 'replanOnBaseChange') continue;
      if (!m?.top && !PROJECT_POLICY_KEYS.includes(key as never)) continue;
      const policyKey = key as PolicyKey;
      if (!rules.allowedPolicyKeys.includes(policyKey)) {
        errors.push({ file, ...at, path, message: `the operator does not let this repository set \`${policyKey}\` (allowedPolicyKeys; ${because('allowedPolicyKeys')})` });
      } else if (policyKey === 'hooks' && !rules.allowHooks) {
        errors.push({ file, ...at, path, message: `repository hooks are turned off by the operator (allowHooks: false; ${because('allowHooks')})` });
      } else if (policyKey === 'env' && !rules.allowEnv) {
        errors.push({ file, ...at, path, message: `repository \`env\` is turned off by the operator (allowEnv: false; ${because('allowEnv')})` });
      }
      continue;
    }
    const env = ENV_NAME_PATH.exec(path)?.groups;
    if (!env || !rules.allowEnv || rules.envAllowlist.length === 0) continue;
    const name = env.plain ?? (JSON.parse(env.quoted!) as string);
    if (!rules.envAllowlist.some((glob) => matchesGlob(name, glob))) {
      errors.push({ file, ...at, path, message: `${quote(name)} is not in the operator's env allowlist (${rules.envAllowlist.map((g) => `\`${g}\``).join(', ')}; ${because('envAllowlist')})` });
    }
  }
  return errors.toSorted((a, b) => a.line - b.line || a.column - b.column);
}

/** The operator's caps on what the reviewed copy allows: forks, parallelism, and the requirements no copy can drop. */
export function capByOperator(config: RepoConfig, rules: EffectiveRules): RepoConfig {
  return {
    ...config,
    allowForks: config.allowForks && rules.allowForks,
    parallelism: rules.maxParallelism ? Math.min(config.parallelism, rules.maxParallelism) : config.parallelism,
    defaults: addRequired(config.defaults, rules),
    projects: config.projects.map((p) => addRequired(p, rules)),
  };
}
