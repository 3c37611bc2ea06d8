// Defaults merging and `when` overrides. Pure: no I/O, so the workflow can call resolveProject too.
import { matchesGlob } from 'node:path';
import type { ProjectSettings, ResolvedProject, WrittenSettings } from '../../shared/config.ts';

export const DEFAULT_WHEN_MODIFIED = ['**/*.tf', '**/*.tfvars', '**/*.tofu', '.terraform.lock.hcl'];

/** `own` wins; mappings are merged one level deep, lists are replaced. */
export function mergeSettings(defaults: WrittenSettings, own: WrittenSettings): WrittenSettings {
  const merged: WrittenSettings = { ...defaults, ...own };
  if (defaults.autoplan || own.autoplan) merged.autoplan = { ...defaults.autoplan, ...own.autoplan };
  if (defaults.hooks || own.hooks) merged.hooks = { ...defaults.hooks, ...own.hooks };
  if (defaults.env || own.env) merged.env = { ...defaults.env, ...own.env };
  if (defaults.inputs || own.inputs) merged.inputs = { ...defaults.inputs, ...own.inputs };
  if (defaults.drift || own.drift) merged.drift = { ...defaults.drift, ...own.drift };
  return merged;
}

/**
 * Every default filled in. A `drift` without a schedule is dropped here; the parser reports it first.
 * `inputs` add their projects to `dependsOn` (after the written ones, without repeats).
 */
export function fillDefaults(s: WrittenSettings): ProjectSettings {
  const inputs = s.inputs ?? {};
  const dependsOn = [...new Set([...(s.dependsOn ?? []), ...Object.values(inputs).map((i) => i.project)])];
  return {
    workspace: s.workspace ?? 'default',
    terraform: s.terraform ?? 'terraform',
    autoplan: { enabled: s.autoplan?.enabled ?? true, whenModified: s.autoplan?.whenModified ?? [...DEFAULT_WHEN_MODIFIED] },
    dependsOn,
    inputs,
    applyRequirements: s.applyRequirements ?? [{ kind: 'approved', count: 1, users: [], teams: [] }],
    onFailure: s.onFailure ?? 'rollback',
    lock: s.lock ?? 'onPlan',
    apply: s.apply ?? 'beforeMerge',
    hooks: { prePlan: [], postPlan: [], preApply: [], postApply: [], ...s.hooks },
    env: s.env ?? {},
    when: s.when ?? [],
    ...(s.drift?.schedule ? { drift: { schedule: s.drift.schedule, reconcile: s.drift.reconcile ?? false } } : {}),
  };
}

/**
 * `defaults: { dependsOn: [network] }` means "every other project depends on network": a project does not
 * inherit references to itself (written in the project itself they are an error).
 */
export function inheritedDefaults(defaults: WrittenSettings, projectName: string): WrittenSettings {
  const out = { ...defaults };
  if (defaults.dependsOn) out.dependsOn = defaults.dependsOn.filter((d) => d !== projectName);
  if (defaults.inputs) out.inputs = Object.fromEntries(Object.entries(defaults.inputs).filter(([, ref]) => ref.project !== projectName));
  return out;
}

export interface PullRequestFacts {
  baseBranch: string;
  labels: readonly string[];
}

/** The project as it applies to this PR: every `when` rule whose conditions all match overrides, later rules last. */
export function resolveProject(project: ResolvedProject, pr: PullRequestFacts): ResolvedProject {
  // GitHub label names are unique regardless of case.
  const labels = new Set(pr.labels.map((l) => l.toLowerCase()));
  let resolved = project;
  for (const rule of project.when) {
    if (rule.baseBranch !== undefined && !matchesGlob(pr.baseBranch, rule.baseBranch)) continue;
    if (rule.label !== undefined && !labels.has(rule.label.toLowerCase())) continue;
    resolved = {
      ...resolved,
      ...(rule.applyRequirements ? { applyRequirements: rule.applyRequirements } : {}),
      ...(rule.onFailure ? { onFailure: rule.onFailure } : {}),
    };
  }
  return resolved;
}
