// What happens on `/approve`, `/approve-policies` and `/apply` (and their buttons, and an approving review):
// 1. the command is about the current plan of the head, written after that plan was shown, by someone the
//    default branch's `permissions` allow (never an author of the change);
// 2. `/approve` records the approval per project, pinned to the plan's hash; `/approve-policies` (a policy
//    owner, never an author) records the same for failed policy checks, which block apply until then;
// 3. the projects asked for apply once their apply requirements are met and no upstream is left behind:
//    `apply: afterMerge` ones are only marked approved (the merge deploys them), `lock: onApply` ones are
//    locked first;
// 4. the apply job runs them in dependency order, one run each (pipeline.ts), rolls back on failure, and
//    reports (apply-report.ts). A plan whose file changed is never applied: the PR is planned again.
import { CHECK_APPLY, CHECK_POLICY } from '../../shared/contracts.ts';
import { requirementFacts } from '../activities.ts';
import { applyInOrder } from '../pipeline.ts';
import { approvedForDeploy, failedPolicies, mustApplyFirst, pending, totalSummary, type ProjectPlan } from '../projects.ts';
import { DEFAULT_REQUIREMENTS, evaluate, factsNeeded, policiesPassed, requirementsFrom, type RequirementResult } from '../requirements.ts';
import { askAgainForChangedPlans, reportApply } from './apply-report.ts';
import { lookUpBaseHead, refusedAsOutdated } from './base.ts';
import { authorized, authorizedPolicyOwner, buttonOutdated, currentPlan, predatesPlan, type CommandEvent } from './gate.ts';
import { shortSha, type PrSession } from './session.ts';
import type { PlanRecord } from './state.ts';

export async function onApprove(pr: PrSession, event: CommandEvent): Promise<void> {
  const { actor, deliveryId } = event;
  // Beside the checks below rather than after them: the apply starts a round trip sooner.
  const baseHead = lookUpBaseHead(pr);
  if (event.source === 'review' && event.reviewCommitSha && event.reviewCommitSha !== pr.snapshot.headSha) {
    await pr.reply(deliveryId, 'review-outdated', { actor, shortSha: shortSha(event.reviewCommitSha) });
    return;
  }
  if (await buttonOutdated(pr, event)) return;
  if (!(await authorized(pr, 'approve', actor, deliveryId))) return;
  const plan = await currentPlan(pr, deliveryId, 'approve');
  if (!plan || (await predatesPlan(pr, event, plan))) return;
  // The approval pins the head and the base: a plan whose base moved under its projects is not approved.
  if (await refusedAsOutdated(pr, plan, deliveryId, 'approve', baseHead)) return;
  const chosen = await chosenProjects(pr, plan, event, 'approve');
  if (!chosen) return;
  for (const p of chosen) {
    if (!pr.s.approvals.some((a) => a.actor === actor && a.planId === plan.id && a.project === p.name)) {
      pr.s.approvals.push({ actor, project: p.name, planId: plan.id, sha: plan.sha, planSha256: p.planSha256!, ...(plan.baseSha ? { baseSha: plan.baseSha } : {}) });
    }
  }
  // Default policy: the approval that meets the requirements applies the plan.
  await applyWhenReady(pr, plan, chosen, event, true);
}

/**
 * `/approve-policies [-p project]`: a policy owner lets the current plan proceed although its policy checks
 * failed. Recorded per project, pinned to the plan's hash like an approval; the other requirements still apply.
 */
export async function onApprovePolicies(pr: PrSession, event: CommandEvent): Promise<void> {
  const { actor, deliveryId } = event;
  if (!(await authorizedPolicyOwner(pr, actor, deliveryId))) return;
  const plan = await currentPlan(pr, deliveryId, 'approve-policies');
  if (!plan || (await predatesPlan(pr, event, plan))) return;
  const name = event.command.project;
  const failing = pending(plan.projects).filter((p) => failedPolicies(p).length > 0 && (name === undefined || p.name === name));
  if (failing.length === 0) {
    await pr.reply(deliveryId, 'no-failed-policies', { project: name, shortSha: shortSha(plan.sha) });
    return;
  }
  const approvals = (pr.s.policyApprovals ??= []);
  for (const p of failing) {
    if (!approvals.some((a) => a.actor === actor && a.planId === plan.id && a.project === p.name)) {
      approvals.push({ actor, project: p.name, planId: plan.id, sha: plan.sha, planSha256: p.planSha256! });
    }
    const data = { sha: plan.sha, shortSha: shortSha(plan.sha), actor, name: p.name, failed: failedPolicies(p) };
    // Neutral, not success: the checks did fail; the check no longer blocks a merge that requires it.
    await pr.check(`${CHECK_POLICY}: ${p.name}`, plan.sha, 'completed', { template: 'checks/policy-approved', data }, { ...(p.policyCheckId ? { checkRunId: p.policyCheckId } : {}), conclusion: 'neutral' });
  }
  await pr.reply(deliveryId, 'policies-approved', { actor, shortSha: shortSha(plan.sha), projects: failing.map((p) => ({ name: p.name, failed: failedPolicies(p) })) });
}

/** Policy owners who approved this plan of the project despite failed policy checks. */
const policyApprovers = (pr: PrSession, plan: PlanRecord, project: ProjectPlan) =>
  (pr.s.policyApprovals ?? []).filter((a) => a.planId === plan.id && a.planSha256 === project.planSha256 && a.project === project.name).map((a) => a.actor);

export async function onApply(pr: PrSession, event: CommandEvent): Promise<void> {
  const { actor, deliveryId } = event;
  const baseHead = lookUpBaseHead(pr);
  if (await buttonOutdated(pr, event)) return;
  if (!(await authorized(pr, 'apply', actor, deliveryId))) return;
  const plan = await currentPlan(pr, deliveryId, 'apply');
  if (!plan || (await predatesPlan(pr, event, plan))) return;
  if (await refusedAsOutdated(pr, plan, deliveryId, 'apply', baseHead)) return;
  // apply: afterMerge projects (approved or not) are applied by the merge, never by `/apply`.
  const named = (p: ProjectPlan) => !event.command.project || p.name === event.command.project;
  const later = plan.projects.filter((p) => p.apply === 'afterMerge' && (p.status === 'planned' || p.status === 'approved') && named(p));
  if (later.length > 0) {
    await pr.reply(deliveryId, 'apply-after-merge', { names: later.map((p) => p.name), shortSha: shortSha(plan.sha) });
    if (!pending(plan.projects).some((p) => p.apply !== 'afterMerge' && named(p))) return;
  }
  const chosen = await chosenProjects(pr, plan, event, 'apply');
  if (chosen) await applyWhenReady(pr, plan, chosen.filter((p) => !later.includes(p)), event, false);
}

/** The projects a command names (`-p`), or every project with changes; undefined once it replied why not. */
async function chosenProjects(pr: PrSession, plan: PlanRecord, event: CommandEvent, command: string): Promise<ProjectPlan[] | undefined> {
  const waiting = pending(plan.projects);
  const name = event.command.project;
  if (name === undefined) {
    if (waiting.length > 0) return waiting;
    await pr.reply(event.deliveryId, 'nothing-to-apply', { command });
    return undefined;
  }
  const project = waiting.find((p) => p.name === name);
  if (project) return [project];
  await pr.reply(event.deliveryId, 'not-pending', { project: name, command, shortSha: shortSha(plan.sha) });
  return undefined;
}

/** Applies the projects once their requirements are met and no upstream of theirs is left behind. */
async function applyWhenReady(pr: PrSession, plan: PlanRecord, chosen: ProjectPlan[], event: CommandEvent, approvalRecorded: boolean): Promise<void> {
  const { actor, deliveryId } = event;
  const order = mustApplyFirst(plan.projects, chosen.map((p) => p.name));
  if (order) {
    await pr.reply(deliveryId, 'apply-order', order);
    return;
  }
  const single = plan.projects.length === 1;
  const unmet: RequirementResult[] = [];
  for (const p of chosen) {
    for (const r of await unmetRequirements(pr, plan, p)) unmet.push(single ? r : { ...r, name: `${p.name}: ${r.name}` });
  }
  if (unmet.length > 0) {
    await pr.reply(deliveryId, 'requirements-unmet', { approvalRecorded, actor, shortSha: shortSha(plan.sha), unmet });
    return;
  }
  // apply: afterMerge — met requirements make the project ready to deploy from the merge commit.
  const later = chosen.filter((p) => p.apply === 'afterMerge');
  if (later.length > 0) {
    await approveForMerge(pr, plan, later, actor, deliveryId);
    chosen = chosen.filter((p) => p.apply !== 'afterMerge');
    if (chosen.length === 0) return;
  }
  // lock: onApply — the project is locked when it is about to apply, not when it is planned. An apply
  // does not wait in line: applying later, unasked, is not what `/apply` asked for.
  for (const p of chosen.filter((x) => x.lock === 'onApply')) {
    const answer = await pr.lock(p, { wait: false });
    if (!answer.granted) {
      await pr.reply(deliveryId, 'locked-apply', { name: p.name, project: p.dir, workspace: p.workspace, holderPr: answer.holder?.pr });
      return;
    }
  }
  const names = chosen.map((p) => p.name);
  pr.startJob('apply', plan.sha, () => applyProjects(pr, plan, names, actor));
}

/** This project's apply requirements that are not met now; GitHub is asked only for what they read. */
async function unmetRequirements(pr: PrSession, plan: PlanRecord, project: ProjectPlan): Promise<RequirementResult[]> {
  const config = project.requirements ?? DEFAULT_REQUIREMENTS;
  const approvers = pr.s.approvals.filter((a) => a.planId === plan.id && a.planSha256 === project.planSha256 && a.project === project.name).map((a) => a.actor);
  const needed = factsNeeded(config);
  const teamApprovers = needed.teams.length > 0 ? approvers : [];
  const facts =
    needed.mergeable || needed.divergence || teamApprovers.length > 0
      ? await requirementFacts({ repo: pr.repo, number: pr.number, headSha: plan.sha, baseRef: pr.snapshot.baseRef, mergeable: needed.mergeable, divergence: needed.divergence, approvers: teamApprovers, teams: needed.teams })
      : { mergeable: null, baseSha: '', mergeBaseSha: '', teamsOf: {} as Record<string, string[]> };
  const results = evaluate(requirementsFrom(config), {
    author: pr.snapshot.author,
    approvals: approvers.map((login) => ({ login, teams: facts.teamsOf[login] ?? [] })),
    mergeable: facts.mergeable,
    baseSha: facts.baseSha,
    mergeBaseSha: facts.mergeBaseSha,
    plan: { destroy: project.summary?.destroy ?? 0 },
  });
  const failed = failedPolicies(project);
  if (failed.length > 0) results.push(policiesPassed({ failed, approvedBy: policyApprovers(pr, plan, project), ...(plan.projects.length > 1 ? { project: project.name } : {}) }));
  return results.filter((r) => r.status === 'unmet');
}

/** Marks `apply: afterMerge` projects approved: their apply checks pass, and they deploy once merged. */
async function approveForMerge(pr: PrSession, plan: PlanRecord, projects: ProjectPlan[], actor: string, deliveryId: string): Promise<void> {
  const single = plan.projects.length === 1;
  const data = { sha: plan.sha, shortSha: shortSha(plan.sha), actor, names: projects.map((p) => p.name) };
  for (const p of projects) {
    p.status = 'approved';
    if (!single) await pr.check(`${CHECK_APPLY}: ${p.name}`, plan.sha, 'completed', { template: 'checks/apply-after-merge', data: { ...data, names: [p.name] } }, { conclusion: 'success' });
  }
  if (pending(plan.projects).length === 0) {
    const names = approvedForDeploy(plan.projects).map((p) => p.name);
    await pr.check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-after-merge', data: { ...data, names } }, { checkRunId: plan.applyCheckId, conclusion: 'success' });
    plan.awaitingMerge = true;
  }
  await pr.reply(deliveryId, 'approved-after-merge', data);
}

const projectData = (p: ProjectPlan) => ({ project: p.dir, workspace: p.workspace, name: p.name });

/** The apply job: the named projects of the plan, in dependency order; then the PR is told what happened. */
async function applyProjects(pr: PrSession, plan: PlanRecord, names: string[], actor: string): Promise<void> {
  const { s, snapshot } = pr;
  const projects = plan.projects;
  const chosen = projects.filter((p) => names.includes(p.name));
  const single = projects.length === 1;
  plan.status = 'applying';
  // Who let failed policy checks through, on the apply check and comment.
  const policyApprovedBy = [...new Set((s.policyApprovals ?? []).filter((a) => a.planId === plan.id && names.includes(a.project)).map((a) => a.actor))];
  const data = {
    sha: plan.sha,
    shortSha: shortSha(plan.sha),
    summaryLine: totalSummary(chosen).line,
    actor,
    ...(single ? projectData(projects[0]!) : {}),
    ...(policyApprovedBy.length ? { policyApprovedBy } : {}),
  };
  const checkRunId = await pr.check(CHECK_APPLY, plan.sha, 'in_progress', { template: 'checks/apply-running', data }, { checkRunId: plan.applyCheckId });
  if (!single) {
    for (const p of chosen) {
      p.applyCheckId = await pr.check(`${CHECK_APPLY}: ${p.name}`, plan.sha, 'in_progress', { template: 'checks/apply-running', data: { ...data, ...projectData(p), summaryLine: p.summary?.line } });
    }
  }
  // Policy owners who let failed policy checks through are on the record too.
  const approvals = [...s.approvals, ...(s.policyApprovals ?? [])];
  const approvers = [...new Set(approvals.filter((a) => a.planId === plan.id && names.includes(a.project)).map((a) => a.actor))];
  const context = {
    repo: pr.repo,
    prNumber: pr.number,
    sha: plan.sha,
    cloneUrl: snapshot.headCloneUrl,
    // The same merge of the head into the base as the plan: its work dir, its saved plan.
    baseSha: plan.baseSha ?? snapshot.baseSha,
    ...(plan.baseSha ? { mergeInto: plan.baseSha } : {}),
    known: plan.known,
    parallelism: plan.parallelism,
    record: { trigger: 'pr' as const, pr: pr.number, actor, approvers },
    recorded: await pr.recorded(),
    nextRun: pr.nextRun,
  };
  const outcome = await applyInOrder(context, projects, names, snapshot.baseRef, () => (plan.clock = (plan.clock ?? 0) + 1));

  const { applied, failures, rollbacks } = outcome;
  const kinds = [...failures.values()].map((f) => f.kind);
  for (const p of chosen) {
    const failure = failures.get(p.name);
    const rolledBack = rollbacks.get(p.name)?.status === 'rolled-back';
    if (applied.has(p.name)) p.status = rolledBack ? 'rolled-back' : 'applied';
    else if (failure?.kind === 'failed') p.status = rolledBack ? 'rolled-back' : 'apply-failed';
    else if (failure?.kind === 'unknown') p.status = 'unknown';
  }
  plan.status =
    failures.size === 0 ? (pending(projects).length === 0 ? 'applied' : 'ready') : kinds.includes('unknown') ? 'unknown' : kinds.includes('failed') ? 'apply-failed' : 'ready';
  if (kinds.includes('stale')) {
    // Never apply something unreviewed: throw the plan away, re-plan, ask for approval again.
    plan.status = 'discarded';
    s.approvals = [];
    s.policyApprovals = [];
    if (s.snapshot?.headSha === plan.sha) s.wantPlan = plan.sha;
  }
  await reportApply(pr, plan, chosen, { checkRunId, data, ...outcome });
  await askAgainForChangedPlans(pr, plan, failures);
}
