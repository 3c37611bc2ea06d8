// The plan and apply comments of a push that touches several projects: one comment per run, a table
// first and a collapsed section per project. Words live in comment-templates/multi-*.md.hbs; this file
// reads the files the activities left and works out what the templates show.
import { readBotFile } from './checkout-files.ts';
import type { PlanSummary } from '../shared/activity-contracts.ts';
import { diffPlans } from './plan-diff.ts';
import { readChangeSummary, render } from './render.ts';

export interface ProjectPlanReport {
  name: string;
  dir: string;
  workspace: string;
  status: 'planned' | 'failed' | 'locked' | 'skipped' | 'no-changes';
  summary?: PlanSummary;
  /** The plan text formatted for ```diff (PlanResult.planTextFile). */
  planTextFile?: string;
  /** The plan's `terraform show -json` (PlanResult.showJsonFile): the change summary above the plan. */
  showJsonFile?: string;
  /** Output of the failed command (PlanResult.outputFile). */
  errorFile?: string;
  /** The PR holding the project's lock. */
  lockedBy?: number;
  /** This PR's place in line for that lock (1: next); absent when it does not wait. */
  lockPlace?: number;
  /** Name of the upstream project whose failure skipped this one. */
  skippedBecause?: string;
  /** This project's plan text from the previous plan on this PR, to show what changed since. */
  previousPlanTextFile?: string;
  /** Its policy checks' verdicts (activities/policy-checks.ts). */
  policies?: Array<{ name: string; passed: boolean; findingsFile?: string; error?: string }>;
}

export interface ProjectApplyReport {
  name: string;
  dir: string;
  workspace: string;
  /** reverted / revert-failed: applied in this run, then rolled back because a later project failed. */
  result: 'applied' | 'failed' | 'rolled-back' | 'rollback-failed' | 'reverted' | 'revert-failed' | 'skipped' | 'not-applied';
  outputFile?: string;
  rollbackOutputFile?: string;
}

/** A file that is gone (work dir cleaned up) reads as undefined; the templates say so in words. */
async function readIfThere(path: string | undefined): Promise<string | undefined> {
  return path === undefined ? undefined : readBotFile(path).catch(() => undefined);
}

/** `|` ends a table cell even inside a code span, so cells escape it. */
const cell = (text: string) => text.replaceAll('|', '\\|');

/** How this plan differs from the previous plan on the PR; nothing when there was none. */
async function comparePrevious(
  project: ProjectPlanReport,
  planText: string | undefined,
): Promise<{ since?: 'changed' | 'same' | 'unavailable'; sinceDiff?: string }> {
  if (project.previousPlanTextFile === undefined) return {};
  const previous = await readIfThere(project.previousPlanTextFile);
  if (previous === undefined || planText === undefined) return { since: 'unavailable' };
  const diff = diffPlans(previous, planText, { previous: 'previous', current: 'current' });
  if (diff === '') return { since: 'same' };
  // The section title names both sides; the ---/+++ header lines would only be highlighted as noise.
  return { since: 'changed', sinceDiff: diff.replace(/^---.*\n\+\+\+.*\n/, '') };
}

export async function renderPlanComment(input: { sha: string; shortSha: string; projects: ProjectPlanReport[]; policyChanges?: string[] }): Promise<string> {
  // Findings go into top-level keys: the policy-findings partial looks them up there, as for one project.
  const findings: Record<string, string | undefined> = {};
  const projects = await Promise.all(
    input.projects.map(async (p, i) => {
      const planText = await readIfThere(p.planTextFile);
      const policies = await Promise.all(
        (p.policies ?? []).map(async (c, j) => {
          const findingsKey = `policyFindings${i}_${j}`;
          findings[findingsKey] = await readIfThere(c.findingsFile);
          return { name: c.name, passed: c.passed, findingsKey, ...(c.error ? { error: c.error } : {}) };
        }),
      );
      return {
        ...p,
        policies,
        policiesFailed: policies.filter((c) => !c.passed).map((c) => c.name),
        dirCell: cell(p.dir),
        workspaceCell: cell(p.workspace),
        hasChanges: p.status === 'planned' && p.summary?.hasChanges !== false,
        planText,
        changeSummary: await readChangeSummary(p.showJsonFile),
        errorText: await readIfThere(p.errorFile),
        ...(await comparePrevious(p, planText)),
      };
    }),
  );
  return render({
    template: 'multi-plan',
    data: {
      ...findings,
      sha: input.sha,
      shortSha: input.shortSha,
      projects,
      anyChanges: projects.some((p) => p.hasChanges),
      anyFailed: projects.some((p) => p.status === 'failed'),
      policyChanges: input.policyChanges,
    },
  });
}

export async function renderApplyComment(input: {
  sha: string;
  shortSha: string;
  actor: string;
  projects: ProjectApplyReport[];
}): Promise<string> {
  const projects = await Promise.all(
    input.projects.map(async (p) => ({
      ...p,
      output: await readIfThere(p.outputFile),
      rollbackOutput: await readIfThere(p.rollbackOutputFile),
      hasFiles: p.outputFile !== undefined || p.rollbackOutputFile !== undefined,
    })),
  );
  const has = (result: ProjectApplyReport['result']) => projects.some((p) => p.result === result);
  return render({
    template: 'multi-apply',
    data: {
      sha: input.sha,
      shortSha: input.shortSha,
      actor: input.actor,
      projects,
      allApplied: projects.every((p) => p.result === 'applied'),
      anyRollbackFailed: has('rollback-failed'),
      anyFailed: has('failed') || has('rolled-back'),
    },
  });
}
