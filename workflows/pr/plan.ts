// What happens when a PR is planned (a push, `/plan`, the Re-plan button): the default branch's policy
// decides whether anything runs; the projects the push affects (or the command names) are locked, planned
// in dependency order, one run each, with their upstreams' current outputs; then reported (plan-report.ts).
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { CHECK_PLAN } from '../../shared/contracts.ts';
import type { NodeOutcome } from '../../shared/dag.ts';
import type { RunResult } from '../../shared/runs.ts';
import { selectProjects } from '../activities.ts';
import { defaultBranchPolicy } from '../authorize.ts';
import { PlanFailed, planInOrder } from '../pipeline.ts';
import { failureMessage } from '../project-run.ts';
import { chooseProjects, toProjectPlan, type PlanTarget, type ProjectPlan } from '../projects.ts';
import { approvedBefore, carryApprovals, mergeIntoBase, replanWaiters, reportConflict } from './base.ts';
import { authorized, refuseBase, type CommandEvent } from './gate.ts';
import { lockForPlan } from './locks.ts';
import { reportPlans } from './plan-report.ts';
import { shortSha, type PrSession } from './session.ts';

/** `/plan [-p project | -d dir [-w ws]] [-- args]`: plans the head again, as soon as no job runs. */
export async function onPlan(pr: PrSession, event: CommandEvent): Promise<void> {
  if (!(await authorized(pr, 'plan', event.actor, event.deliveryId))) return;
  if (pr.job?.kind === 'plan') pr.job.scope.cancel();
  pr.s.wantPlan = pr.snapshot.headSha;
  pr.s.wantPlanBy = event.actor;
  const { project, dir, workspace, extraArgs } = event.command;
  pr.s.wantPlanScope = project || dir || extraArgs.length ? { project, dir, workspace, extraArgs } : undefined;
}

/** `/cancel`: stops a running plan (an apply is never interrupted) and forgets a queued one. */
export async function onCancel(pr: PrSession, event: CommandEvent): Promise<void> {
  if (!(await pr.hasWrite(event.actor))) {
    await pr.reply(event.deliveryId, 'not-allowed', { actor: event.actor, command: 'cancel', required: 'write' });
    return;
  }
  pr.s.wantPlan = undefined;
  if (pr.job?.kind === 'plan') pr.job.scope.cancel();
  await pr.reply(event.deliveryId, 'cancelled', { job: pr.job?.kind });
}

/** Starts the plan of `sha` as the PR's background job. */
export function startPlan(pr: PrSession, sha: string, scope?: PlanTarget & { extraArgs?: string[] }, by?: string): void {
  const planId = ++pr.s.planSeq;
  const replanned = replanWaiters(pr);
  pr.startJob('plan', sha, () => planProjects(pr, planId, sha, scope ?? {}, scope?.extraArgs ?? [], by ?? pr.snapshot.author).finally(replanned));
}

const projectData = (p: ProjectPlan) => ({ project: p.dir, workspace: p.workspace, name: p.name });

async function planProjects(pr: PrSession, planId: number, sha: string, target: PlanTarget, extraArgs: string[], by: string): Promise<void> {
  const { repo, snapshot } = pr;
  const data = { sha, shortSha: shortSha(sha) };
  const key = `plan-${planId}`;
  const fromFork = snapshot.fromFork ?? snapshot.headCloneUrl !== repo.cloneUrl;
  const select = () => selectProjects({ repo, prNumber: pr.number, cloneUrl: snapshot.headCloneUrl, sha, pr: { baseBranch: snapshot.baseRef, labels: snapshot.labels ?? [] }, baseSha: snapshot.baseSha });
  // What can go at once goes at once: the check, the policy and, for a branch of this repository, the
  // checkout (a fork's code is not even fetched before the policy allows forks).
  // The merge into the base goes beside the selection too (used only once projects are chosen).
  const [checkRunId, policy, selected, , mergedEarly] = await Promise.all([
    pr.check(CHECK_PLAN, sha, 'in_progress', { template: 'checks/plans-running', data }),
    defaultBranchPolicy(repo, pr.number, { baseBranch: snapshot.baseRef, labels: snapshot.labels ?? [] }).catch((err: unknown) => err as Error),
    fromFork ? undefined : select().catch((err: unknown) => err as Error),
    pr.recorded(),
    fromFork ? undefined : mergeIntoBase(pr, sha).catch((err: unknown) => err as Error),
  ]);
  let stage: 'checkout' | 'plan' | 'report' = 'checkout';
  let projects: ProjectPlan[] = [];
  const finish = (comment: { template: string; data?: Record<string, unknown> }, check: string, conclusion: 'failure' | 'neutral' | 'success', actions: Array<'replan'> = ['replan']) =>
    CancellationScope.nonCancellable(async () => {
      await pr.post(key, comment.template, { ...data, ...comment.data });
      await pr.check(CHECK_PLAN, sha, 'completed', { template: check, data }, { checkRunId, conclusion, ...(actions.length ? { actions } : {}) });
    });
  try {
    // A fork's code never runs unless the default branch's .terrapin.yml (and the operator) allows it, nor
    // does anything run for a PR whose base branch the operator does not allow.
    if (policy instanceof Error) throw policy;
    if (!policy.baseAllowed) {
      await CancellationScope.nonCancellable(async () => {
        await refuseBase(pr, key, sha, policy, 'plan');
        await pr.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-base-refused', data: { ...data, baseRef: snapshot.baseRef } }, { checkRunId, conclusion: 'neutral' });
      });
      return;
    }
    if (fromFork && !policy.allowForks) return await finish({ template: 'fork-refused' }, 'checks/plan-fork', 'neutral', []);
    const selection = selected ?? (await select());
    if (selection instanceof Error) throw selection;
    if (selection.configErrors?.length) {
      const errors = selection.configErrors;
      await CancellationScope.nonCancellable(async () => {
        await pr.post(key, 'config-error', { ...data, errors });
        await pr.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-config-error', data: { ...data, count: errors.length } }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
      });
      return;
    }
    const choice = chooseProjects(selection.projects ?? [], selection.allProjects ?? [], target);
    if ('error' in choice) return await finish({ template: choice.error.template, data: choice.error.data }, 'checks/plan-nothing', 'failure');
    if (choice.projects.length === 0) return await finish({ template: 'no-projects' }, 'checks/plan-no-projects', 'success');
    // Planned as merging would make it: the head merged into the base branch's head now, one base for every project.
    const merged = mergedEarly ?? (await mergeIntoBase(pr, sha));
    if (merged instanceof Error) throw merged;
    if (merged.conflicts) return await CancellationScope.nonCancellable(() => reportConflict(pr, key, sha, checkRunId, merged));
    projects = choice.projects.map((p) => toProjectPlan(p, `p${planId}`));
    if (projects.length > 1) {
      await Promise.all(
        projects.map(async (p) => {
          p.checkRunId = await pr.check(`${CHECK_PLAN}: ${p.name}`, sha, 'in_progress', { template: 'checks/plan-running', data: { ...data, ...projectData(p) } });
        }),
      );
    }
    // lock: onPlan — a project another PR holds is not planned; this PR waits in line for it (pr/locks.ts).
    const narrowed = target.project || target.dir || extraArgs.length ? { ...target, extraArgs } : undefined;
    await lockForPlan(pr, projects, policy.lockTtl, narrowed, by);

    stage = 'plan';
    const known = (selection.allProjects ?? []).map((p) => ({ name: p.name, dir: p.dir, workspace: p.workspace, binary: p.terraform }));
    const parallelism = selection.parallelism ?? 1;
    const context = {
      repo,
      prNumber: pr.number,
      sha,
      cloneUrl: snapshot.headCloneUrl,
      baseSha: merged.baseSha,
      mergeInto: merged.baseSha,
      known,
      parallelism,
      record: { trigger: 'pr' as const, pr: pr.number, actor: by },
      recorded: await pr.recorded(),
      nextRun: pr.nextRun,
    };
    const outcomes = await planInOrder(context, projects.filter((p) => p.status !== 'locked'), extraArgs);
    takePlanResults(projects, outcomes);

    stage = 'report';
    // Reported even if a newer push arrives meanwhile: the plans are already made.
    const policyAt = selection.policySha ? { branch: selection.defaultBranch, sha: selection.policySha } : undefined;
    const approved = approvedBefore(pr, sha);
    await CancellationScope.nonCancellable(() => reportPlans(pr, { planId, sha, baseSha: merged.baseSha, key, checkRunId, projects, known, parallelism, policyChanges: selection.policyChanges, policy: policyAt }));
    await CancellationScope.nonCancellable(() => carryApprovals(pr, approved, planId));
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      const cancelled = isCancellation(err);
      // Per-project checks still running would otherwise stay "in progress" on this commit forever.
      for (const p of projects.filter((x) => x.checkRunId !== undefined)) {
        const template = cancelled ? 'checks/plan-cancelled' : 'checks/plan-failed';
        await pr.check(`${CHECK_PLAN}: ${p.name}`, sha, 'completed', { template, data: { ...data, ...projectData(p) } }, { checkRunId: p.checkRunId, conclusion: cancelled ? 'cancelled' : 'failure', actions: ['replan'] });
      }
      if (cancelled) {
        await pr.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-cancelled', data }, { checkRunId, conclusion: 'cancelled', actions: ['replan'] });
        return;
      }
      // git, terraform or GitHub kept failing (after retries): say so where the user is.
      const only = projects.length === 1 ? projectData(projects[0]!) : {};
      await pr.post(key, 'plan-error', { ...data, ...only, step: stage, error: failureMessage(err) });
      await pr.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-failed', data }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
    });
    if (isCancellation(err)) throw err;
  }
  // The plan's comment and checks are out: approvals must come after this.
  if (pr.s.plan?.id === planId) pr.s.plan.postedAt ??= Date.now();
}

/** Each project's plan run, as the project's status and files. */
function takePlanResults(projects: ProjectPlan[], outcomes: Map<string, NodeOutcome<RunResult>>): void {
  for (const p of projects) {
    const outcome = outcomes.get(p.name);
    if (!outcome) continue; // locked
    if (outcome.status === 'skipped') {
      p.status = 'skipped';
      p.skippedBecause = p.dependsOn.find((d) => {
        const up = projects.find((x) => x.name === d);
        return up && (up.status === 'failed' || up.status === 'skipped');
      });
      continue;
    }
    if (outcome.status === 'failed') {
      const failed = outcome.error instanceof PlanFailed ? outcome.error.result.failure : undefined;
      p.status = 'failed';
      if (failed?.outputFile) Object.assign(p, { errorFile: failed.outputFile, errorStep: failed.step, exitCode: failed.exitCode });
      else p.error = failed?.error ?? failureMessage(outcome.error);
      continue;
    }
    const r = outcome.value;
    Object.assign(p, { status: r.outcome === 'planned' ? 'planned' : 'no-changes', ...r.plan, ...(r.policies ? { policyResults: r.policies } : {}) });
  }
}
