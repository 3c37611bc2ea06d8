// The projects of one plan, and the pure decisions about them: which to plan for a command, what a
// plan run adds up to, and whether a set of projects may be applied in the order asked.
import type { PlanSummary, TerraformBinary } from '../shared/activity-contracts.ts';
import type { ProjectPlanReport } from '../activities/multi-project-comment.ts';
import type { ApplyMode, ApplyRequirement, Hooks, InputRef, LockMode, OnFailure, PolicyCheck, ResolvedProject } from '../shared/config.ts';
import type { PolicyOutcome } from '../shared/runs.ts';

/** `approved`: an `apply: afterMerge` project whose requirements are met; it deploys once the PR merges. */
export type ProjectStatus = 'planned' | 'no-changes' | 'failed' | 'locked' | 'skipped' | 'applied' | 'apply-failed' | 'rolled-back' | 'unknown' | 'approved';

export interface ProjectPlan {
  name: string;
  dir: string;
  workspace: string;
  binary: TerraformBinary;
  /** Keeps this plan's files apart from other plans of the project in the same work dir. */
  label: string;
  status: ProjectStatus;
  planFile?: string;
  planSha256?: string;
  summary?: PlanSummary;
  planTextFile?: string;
  showJsonFile?: string;
  /** Output of the failed step, or the error when terraform could not run at all. */
  errorFile?: string;
  errorStep?: string;
  exitCode?: number;
  error?: string;
  lockedBy?: number;
  /** Locked: this PR's place in line for the lock (1: next); absent when it does not wait. */
  lockPlace?: number;
  skippedBecause?: string;
  onFailure: OnFailure;
  requirements: ApplyRequirement[];
  dependsOn: string[];
  inputs: Record<string, InputRef>;
  lock: LockMode;
  /** Absent on plans made before deploys existed: beforeMerge. */
  apply?: ApplyMode;
  hooks: Hooks;
  env: Record<string, string>;
  checkRunId?: number;
  applyCheckId?: number;
  /** The policy checks run after its plan, and their verdicts on this plan. */
  policies?: PolicyCheck[];
  /** The reviewed commit whose files the checks run in. */
  policiesAt?: string;
  policyResults?: PolicyOutcome[];
  policyCheckId?: number;
  /** Ticks of the plan's clock: when this project's plan was made and when it was applied. */
  plannedAt?: number;
  appliedAt?: number;
}

/**
 * Whether an upstream applied after this project's plan was made (in this apply run or an earlier one):
 * the plan then carries the upstream's old outputs and must be made again before it applies.
 */
export function upstreamAppliedSincePlan(p: ProjectPlan, projects: readonly ProjectPlan[]): boolean {
  return p.dependsOn.some((u) => {
    const up = projects.find((x) => x.name === u);
    return up?.appliedAt !== undefined && up.appliedAt > (p.plannedAt ?? 0);
  });
}

export function toProjectPlan(project: ResolvedProject, label: string): ProjectPlan {
  return {
    name: project.name,
    dir: project.dir,
    workspace: project.workspace,
    binary: project.terraform,
    label,
    status: 'planned',
    onFailure: project.onFailure,
    requirements: project.applyRequirements,
    dependsOn: project.dependsOn,
    inputs: project.inputs,
    lock: project.lock,
    apply: project.apply,
    hooks: project.hooks,
    env: project.env,
    ...(project.policies?.length ? { policies: project.policies, ...(project.policiesAt ? { policiesAt: project.policiesAt } : {}) } : {}),
  };
}

export interface PlanTarget {
  project?: string;
  dir?: string;
  workspace?: string;
}

export type Choice = { projects: ResolvedProject[] } | { error: { template: string; data: Record<string, unknown> } };

/** `/plan -p name` or `/plan -d dir [-w ws]` picks from every known project; a bare plan takes the affected ones. */
export function chooseProjects(affected: ResolvedProject[], all: ResolvedProject[], target: PlanTarget = {}): Choice {
  const known = all.map((p) => p.name);
  if (target.project !== undefined) {
    const found = all.find((p) => p.name === target.project);
    return found ? { projects: [found] } : { error: { template: 'replies/unknown-project', data: { project: target.project, known } } };
  }
  if (target.dir !== undefined) {
    const dir = target.dir.replace(/^\.\/+/, '').replace(/\/+$/, '') || '.';
    const found = all.filter((p) => p.dir === dir && (target.workspace === undefined || p.workspace === target.workspace));
    return found.length > 0
      ? { projects: found }
      : { error: { template: 'replies/unknown-dir', data: { dir, workspace: target.workspace, known: all.map((p) => `${p.dir} (${p.workspace})`) } } };
  }
  return { projects: affected };
}

/** The sum of the projects' plans, in terraform's words. */
export function totalSummary(projects: readonly ProjectPlan[]): { add: number; change: number; destroy: number; line: string } {
  const sum = { add: 0, change: 0, destroy: 0 };
  for (const p of projects) {
    if (!p.summary) continue;
    sum.add += p.summary.add;
    sum.change += p.summary.change;
    sum.destroy += p.summary.destroy;
  }
  const changes = projects.some((p) => p.summary?.hasChanges);
  return { ...sum, line: changes ? `Plan: ${sum.add} to add, ${sum.change} to change, ${sum.destroy} to destroy.` : 'No changes.' };
}

/** `apply: afterMerge` projects whose requirements were met on the PR: what a merge deploys as approved. */
export const approvedForDeploy = (projects: readonly ProjectPlan[]) => projects.filter((p) => p.status === 'approved');

/** The policy checks that failed on the project's current plan. */
export const failedPolicies = (p: ProjectPlan): string[] => (p.policyResults ?? []).filter((r) => !r.passed).map((r) => r.name);

/** Projects that still have changes to apply. */
export const pending = (projects: readonly ProjectPlan[]) => projects.filter((p) => p.status === 'planned');

/** An upstream in this plan with changes still pending must be applied first (or together). */
export function mustApplyFirst(projects: readonly ProjectPlan[], chosen: readonly string[]): { project: string; upstream: string } | undefined {
  const waiting = new Set(pending(projects).map((p) => p.name));
  for (const name of chosen) {
    const p = projects.find((x) => x.name === name)!;
    const upstream = p.dependsOn.find((u) => waiting.has(u) && !chosen.includes(u));
    if (upstream) return { project: name, upstream };
  }
  return undefined;
}

export function planReport(p: ProjectPlan, previous?: ProjectPlan): ProjectPlanReport {
  const status = p.status === 'planned' || p.status === 'no-changes' || p.status === 'failed' || p.status === 'locked' || p.status === 'skipped' ? p.status : 'planned';
  return {
    name: p.name,
    dir: p.dir,
    workspace: p.workspace,
    status,
    summary: p.summary,
    planTextFile: p.planTextFile,
    showJsonFile: p.showJsonFile,
    errorFile: p.errorFile,
    lockedBy: p.lockedBy,
    lockPlace: p.lockPlace,
    skippedBecause: p.skippedBecause,
    previousPlanTextFile: previous?.planTextFile,
    ...(p.policyResults?.length ? { policies: p.policyResults } : {}),
  };
}
