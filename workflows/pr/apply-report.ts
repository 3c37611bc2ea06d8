// How an apply is shown: one comment (a project's own for one project, a table for several), its checks,
// and a fresh approval asked for each downstream whose plan changed once its upstream applied.
import type { ProjectApplyReport } from '../../activities/multi-project-comment.ts';
import { CHECK_APPLY } from '../../shared/contracts.ts';
import { postApplyReport } from '../activities.ts';
import type { ApplyFailure, ApplyOutcome, Rollback } from '../pipeline.ts';
import { pending, totalSummary, type ProjectPlan } from '../projects.ts';
import { shortSha, type Conclusion, type PrSession } from './session.ts';
import type { PlanRecord } from './state.ts';

export interface ApplyReport extends ApplyOutcome {
  checkRunId: number;
  data: Record<string, unknown>;
}

const projectData = (p: ProjectPlan) => ({ project: p.dir, workspace: p.workspace, name: p.name });

export function reportApply(pr: PrSession, plan: PlanRecord, chosen: ProjectPlan[], report: ApplyReport): Promise<void> {
  return plan.projects.length === 1 ? reportOne(pr, plan, report) : reportMany(pr, plan, chosen, report);
}

async function reportOne(pr: PrSession, plan: PlanRecord, { checkRunId, data, failures, logs, rollbacks, verifiedAfterRestart }: ApplyReport): Promise<void> {
  const p = plan.projects[0]!;
  const failure = failures.get(p.name);
  const key = `apply-${plan.id}`;
  const done = (template: string, conclusion: Conclusion, d = data) => pr.check(CHECK_APPLY, plan.sha, 'completed', { template, data: d }, { checkRunId, conclusion });
  if (!failure) {
    // Verified: the log is the plan made after the restart, which found nothing left to do.
    const verified = verifiedAfterRestart?.has(p.name) === true;
    await pr.post(key, 'apply', { ...data, outcome: 'applied', verifiedAfterRestart: verified }, verified ? { afterRestartPlan: logs.get(p.name)! } : { output: logs.get(p.name)! });
    await done('checks/apply-done', 'success', { ...data, verifiedAfterRestart: verified });
  } else if (failure.kind === 'stale') {
    await pr.post(key, 'replies/plan-stale', { ...data, reason: 'changed' });
    await done('checks/apply-stale', 'failure');
  } else if (failure.kind === 'unknown') {
    await pr.post(key, 'apply', { ...data, outcome: 'unknown', error: failure.error }, failure.afterRestartPlanTextFile ? { afterRestartPlan: failure.afterRestartPlanTextFile } : {});
    await done('checks/apply-unknown', 'failure');
  } else if (failure.kind === 'failed') {
    const r = rollbacks.get(p.name);
    const rollback = r ? { ...r, shortBaseSha: r.baseSha ? shortSha(r.baseSha) : undefined } : { status: 'disabled', baseRef: pr.snapshot.baseRef };
    const files: Record<string, string> = {};
    if (failure.outputFile) files.output = failure.outputFile;
    if (r?.outputFile) files.rollbackOutput = r.outputFile;
    await pr.post(key, 'apply', { ...data, outcome: 'failed', rollback }, files);
    await done('checks/apply-failed', 'failure', { ...data, rollback });
  }
}

async function reportMany(pr: PrSession, plan: PlanRecord, chosen: ProjectPlan[], { checkRunId, data, failures, logs, rollbacks }: ApplyReport): Promise<void> {
  const projects: ProjectApplyReport[] = chosen.map((p) => {
    const r = rollbacks.get(p.name);
    const failure = failures.get(p.name);
    const outputFile = logs.get(p.name) ?? (failure?.kind === 'failed' ? failure.outputFile : undefined);
    return { name: p.name, dir: p.dir, workspace: p.workspace, result: applyResult(p, failure, r), outputFile, rollbackOutputFile: r?.outputFile };
  });
  await postApplyReport({ repo: pr.repo, number: pr.number, key: `apply-${plan.id}`, report: { sha: plan.sha, shortSha: shortSha(plan.sha), actor: String(data.actor), projects } });
  for (const report of projects) {
    const p = chosen.find((x) => x.name === report.name)!;
    const [template, conclusion] = APPLY_CHECKS[report.result];
    const d = { ...data, ...projectData(p), summaryLine: p.summary?.line, rollback: rollbacks.get(p.name) };
    await pr.check(`${CHECK_APPLY}: ${p.name}`, plan.sha, 'completed', { template, data: d }, { checkRunId: p.applyCheckId, conclusion });
  }
  // A plan that changed under its approval is not a failure: it waits for approval again.
  const ok = [...failures.values()].every((f) => f.kind === 'changed');
  const remaining = pending(plan.projects).length;
  const template = ok ? (remaining === 0 ? 'checks/apply-done' : 'checks/apply-waiting') : 'checks/applies-failed';
  const output = { template, data: { ...data, summaryLine: totalSummary(pending(plan.projects)).line } };
  if (ok && remaining > 0) await pr.check(CHECK_APPLY, plan.sha, 'queued', output, { checkRunId, actions: ['approve', 'apply'] });
  else await pr.check(CHECK_APPLY, plan.sha, 'completed', output, { checkRunId, conclusion: ok ? 'success' : 'failure' });
}

function applyResult(p: ProjectPlan, failure: ApplyFailure | undefined, rollback: Rollback | undefined): ProjectApplyReport['result'] {
  const appliedThenReverted = !failure && rollback;
  if (appliedThenReverted) return rollback.status === 'rolled-back' ? 'reverted' : 'revert-failed';
  if (rollback) return rollback.status === 'rolled-back' ? 'rolled-back' : 'rollback-failed';
  if (p.status === 'applied') return 'applied';
  if (failure?.kind === 'changed') return 'not-applied';
  return failure ? 'failed' : 'skipped';
}

const APPLY_CHECKS: Record<ProjectApplyReport['result'], [string, Conclusion]> = {
  applied: ['checks/apply-done', 'success'],
  reverted: ['checks/apply-project-rolled-back', 'neutral'],
  'revert-failed': ['checks/apply-project-rollback-failed', 'failure'],
  failed: ['checks/apply-project-failed', 'failure'],
  'rolled-back': ['checks/apply-project-rolled-back', 'failure'],
  'rollback-failed': ['checks/apply-project-rollback-failed', 'failure'],
  skipped: ['checks/apply-project-skipped', 'skipped'],
  'not-applied': ['checks/apply-project-changed', 'neutral'],
};

/** A downstream whose fresh plan differs from the approved one becomes a plan to approve again. */
export async function askAgainForChangedPlans(pr: PrSession, plan: PlanRecord, failures: Map<string, ApplyFailure>): Promise<void> {
  for (const [name, failure] of failures) {
    if (failure.kind !== 'changed') continue;
    const p = plan.projects.find((x) => x.name === name)!;
    const { fresh } = failure;
    Object.assign(p, { status: 'planned', plannedAt: (plan.clock = (plan.clock ?? 0) + 1), label: failure.label, ...fresh });
    pr.s.approvals = pr.s.approvals.filter((a) => !(a.planId === plan.id && a.project === name));
    const files: Record<string, string> = failure.diffFile ? { diff: failure.diffFile, planText: fresh.planTextFile } : { planText: fresh.planTextFile };
    const data = { shortSha: shortSha(plan.sha), ...projectData(p), changes: failure.changes, summaryLine: p.summary?.line };
    await pr.post(`changed-${plan.id}-${name}`, 'replies/plan-changed-at-apply', data, files);
  }
}
