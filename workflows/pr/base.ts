// A PR is planned as merging it would make it: its head merged into its base branch's head (one base
// commit for every project of a plan). When the base moves and the change touches the plan's projects,
// the plan is outdated: nothing is approved or applied from it, it is planned again (when the push
// workflow gives the PR its turn), and approvals carry over only to a new plan that does exactly the same.
import { ActivityFailure, CancellationScope, getExternalWorkflowHandle, log } from '@temporalio/workflow';
import { BASE_MOVED_REPLY_SIGNAL, CHECK_APPLY, CHECK_PLAN, type BaseChange, type BaseMovedReply, type PrEvent } from '../../shared/contracts.ts';
import { branchHead, checkout, comparePlans, selectProjects, upsertCheckRun } from '../activities.ts';
import { pending, type ProjectPlan } from '../projects.ts';
import { shortSha, type PrSession } from './session.ts';
import type { Approval, PlanRecord } from './state.ts';

export interface MergedHead {
  /** The base branch head the PR head was merged into. */
  baseSha: string;
  /** Files that conflict: nothing is planned. */
  conflicts?: string[];
}

/** Merges the head into the base branch's head now (the work dir every run of the plan then uses). */
export async function mergeIntoBase(pr: PrSession, sha: string): Promise<MergedHead> {
  const r = await checkout({ repo: pr.repo, prNumber: pr.number, cloneUrl: pr.snapshot.headCloneUrl, sha, mergeInto: { branch: pr.snapshot.baseRef } });
  return { baseSha: r.baseSha!, ...(r.conflicts ? { conflicts: r.conflicts } : {}) };
}

/** Most conflicting files named in the comment. */
export const CONFLICTS_LISTED = 50;

/** A head that does not merge into its base: the files, on the PR and its failed plan check. */
export async function reportConflict(pr: PrSession, key: string, sha: string, checkRunId: number, merged: MergedHead): Promise<void> {
  const baseRef = pr.snapshot.baseRef;
  const all = merged.conflicts ?? [];
  // A PR's file names are its author's words: listed, but not without end.
  const data = { sha, shortSha: shortSha(sha), baseRef, baseSha: merged.baseSha, shortBaseSha: shortSha(merged.baseSha), conflicts: all.slice(0, CONFLICTS_LISTED), more: Math.max(0, all.length - CONFLICTS_LISTED), count: all.length };
  await pr.post(key, 'merge-conflict', data);
  await pr.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-conflict', data }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
}

/** The plan's projects a change of the base touches (by name, or by dir and workspace). */
export function touchedNames(plan: PlanRecord, change: BaseChange): string[] {
  const withChanges = plan.projects.filter((p) => p.status === 'planned' || p.status === 'approved' || p.status === 'no-changes');
  if ('all' in change) return withChanges.map((p) => p.name);
  return withChanges.filter((p) => change.projects.some((c) => c.name === p.name || (c.dir === p.dir && c.workspace === p.workspace))).map((p) => p.name);
}

/** The plan no longer shows what merging does: said on its apply check at once; nothing applies from it. */
async function markStale(pr: PrSession, plan: PlanRecord, baseSha: string, names: string[]): Promise<void> {
  plan.baseMoved = { sha: baseSha, names };
  if (!plan.applyCheckId) return;
  const data = { baseRef: pr.snapshot.baseRef, shortBaseSha: shortSha(baseSha), shortPlannedBaseSha: shortSha(plan.baseSha ?? ''), names };
  await pr.check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-base-moved', data }, { checkRunId: plan.applyCheckId, conclusion: 'neutral', actions: ['replan'] });
  // The check says why already: the new plan's report leaves it as it is.
  plan.applyCheckId = undefined;
}

async function tell(replyTo: string, reply: BaseMovedReply): Promise<void> {
  try {
    await getExternalWorkflowHandle(replyTo).signal(BASE_MOVED_REPLY_SIGNAL, reply);
  } catch (err) {
    // The push workflow gave up waiting (or ended): nothing waits for the answer any more.
    log.info('push workflow not reachable', { replyTo, error: String(err) });
  }
}

/** The current plan of the head, if it can still be approved or applied. */
const currentPlan = (pr: PrSession): PlanRecord | undefined => {
  const plan = pr.s.plan;
  return plan && plan.sha === pr.s.snapshot?.headSha && plan.status === 'ready' ? plan : undefined;
};

/** A push moved the PR's base: a plan it touches is outdated at once; the push workflow hears whether this PR needs a new plan. */
export async function onBaseMoved(pr: PrSession, e: Extract<PrEvent, { type: 'base-moved' }>): Promise<void> {
  const reply = (kind: BaseMovedReply['kind']) => tell(e.replyTo, { pr: pr.number, kind, baseSha: e.baseSha });
  if (pr.s.closed || pr.snapshot.baseRef !== e.baseRef) return reply('unaffected');
  const plan = currentPlan(pr);
  // A plan under way resolved its base when it began: it may be older than this push.
  const planning = pr.job?.kind === 'plan' || pr.s.wantPlan !== undefined;
  if (plan?.baseSha === e.baseSha && !planning) return reply('unaffected');
  const names = plan ? touchedNames(plan, e.touched) : [];
  if (names.length === 0 && !planning) return reply('unaffected');
  if (plan && names.length > 0 && !plan.baseMoved) await markStale(pr, plan, e.baseSha, names);
  return reply('stale');
}

/** The PR's turn to be planned again after its base moved; the push workflow hears when the plan is done. */
export function onBaseReplan(pr: PrSession, e: Extract<PrEvent, { type: 'base-replan' }>): Promise<void> | void {
  const { s } = pr;
  if (s.closed || !s.snapshot || s.snapshot.draft) return tell(e.replyTo, { pr: pr.number, kind: 'replanned', baseSha: e.baseSha });
  (s.replanWaiters ??= []).push({ replyTo: e.replyTo, baseSha: e.baseSha });
  if (pr.job?.kind === 'plan') pr.job.scope.cancel();
  s.wantPlan = s.snapshot.headSha;
  s.wantPlanScope = undefined;
  s.wantPlanBy = e.actor;
}

/** Push workflows waiting for this plan: told once it is done (or cancelled), whatever it found. */
export function replanWaiters(pr: PrSession): () => Promise<void> {
  const waiting = pr.s.replanWaiters?.splice(0) ?? [];
  return () => CancellationScope.nonCancellable(async () => {
    for (const w of waiting) await tell(w.replyTo, { pr: pr.number, kind: 'replanned', baseSha: w.baseSha });
  });
}

/**
 * `/approve` or `/apply` of a plan whose base has moved since, touching its projects: refused (replied
 * why), and the PR is planned again. The base is asked for now: a push webhook may not have come yet.
 */
export async function refusedAsOutdated(pr: PrSession, plan: PlanRecord, deliveryId: string, command: string, baseHead?: Promise<string>): Promise<boolean> {
  if (!plan.baseSha) return false;
  if (!plan.baseMoved) {
    // Most commands find the base where the plan left it: one ls-remote says so, with nothing fetched.
    const head = await (baseHead ?? branchHead({ repo: pr.repo, prNumber: pr.number, cloneUrl: pr.repo.cloneUrl, branch: pr.snapshot.baseRef }));
    if (head === plan.baseSha) return false;
    const now = await selectProjects({ repo: pr.repo, prNumber: pr.number, cloneUrl: pr.repo.cloneUrl, branch: pr.snapshot.baseRef, baseSha: plan.baseSha });
    if (now.sha === plan.baseSha) return false;
    const change: BaseChange = now.configErrors?.length || !now.projects ? { all: true } : { projects: now.projects.map((p) => ({ name: p.name, dir: p.dir, workspace: p.workspace })) };
    const names = touchedNames(plan, change);
    if (names.length === 0) return false;
    await markStale(pr, plan, now.sha, names);
  }
  const moved = plan.baseMoved!;
  await pr.reply(deliveryId, 'plan-base-moved', { command, baseRef: pr.snapshot.baseRef, shortSha: shortSha(plan.sha), shortBaseSha: shortSha(moved.sha), shortPlannedBaseSha: shortSha(plan.baseSha), names: moved.names });
  if (pr.s.wantPlan === undefined && pr.job?.kind !== 'plan') {
    pr.s.wantPlan = plan.sha;
    pr.s.wantPlanScope = undefined;
  }
  return true;
}

/**
 * The base branch's head, asked for at once: `/approve` and `/apply` start it beside their permission checks
 * and hand it to refusedAsOutdated, so the answer is there when it is needed. Undefined when the current
 * plan has no base to compare with (or its base is known to have moved).
 */
export function lookUpBaseHead(pr: PrSession): Promise<string> | undefined {
  const plan = pr.s.plan;
  if (!plan?.baseSha || plan.baseMoved) return undefined;
  const head = branchHead({ repo: pr.repo, prNumber: pr.number, cloneUrl: pr.repo.cloneUrl, branch: pr.snapshot.baseRef });
  // Awaited by refusedAsOutdated; a command refused before that has no use for it (nor for its failure).
  head.catch(() => undefined);
  return head;
}

/** What an outdated plan had approved, kept until the new plan of the same head is shown. */
export interface ApprovedBefore {
  plan: PlanRecord;
  approvals: Approval[];
}

/** The current plan's approvals, when it is outdated by its base and this plan is of the same head. */
export function approvedBefore(pr: PrSession, sha: string): ApprovedBefore | undefined {
  const plan = pr.s.plan;
  if (!plan?.baseMoved || plan.sha !== sha || plan.status !== 'ready') return undefined;
  const approvals = pr.s.approvals.filter((a) => a.planId === plan.id);
  return approvals.length ? { plan, approvals: approvals.map((a) => ({ ...a })) } : undefined;
}

/**
 * After the new plan of an outdated one is shown: each project whose new plan does the same actions with
 * the same values as the approved one keeps its approvals (pinned to the new plan and base); any other
 * difference needs a new approval.
 */
export async function carryApprovals(pr: PrSession, before: ApprovedBefore | undefined, planId: number): Promise<string[]> {
  const plan = pr.s.plan;
  if (!before || !plan || plan.id !== planId || plan.status !== 'ready') return [];
  const kept: string[] = [];
  for (const p of plan.projects.filter((x) => x.status === 'planned')) {
    const old = before.plan.projects.find((x) => x.name === p.name);
    const approvals = before.approvals.filter((a) => a.project === p.name && a.planSha256 === old?.planSha256);
    if (!old || approvals.length === 0 || !(await samePlanFiles(old, p))) continue;
    for (const a of approvals) pr.s.approvals.push({ ...a, planId: plan.id, sha: plan.sha, planSha256: p.planSha256!, ...(plan.baseSha ? { baseSha: plan.baseSha } : {}) });
    if (old.status === 'approved' && p.apply === 'afterMerge') p.status = 'approved';
    kept.push(p.name);
  }
  if (kept.length === 0) return kept;
  const names = plan.projects.filter((p) => p.status === 'approved').map((p) => p.name);
  const data = { sha: plan.sha, shortSha: shortSha(plan.sha), names, kept, actor: before.approvals[0]!.actor };
  if (names.length > 0 && pending(plan.projects).length === 0) {
    await upsertCheckRun({ repo: pr.repo, headSha: plan.sha, name: CHECK_APPLY, checkRunId: plan.applyCheckId, status: 'completed', conclusion: 'success', output: { template: 'checks/apply-after-merge', data } });
    plan.awaitingMerge = true;
  }
  await pr.post(`carried-${plan.id}`, 'approvals-carried', { ...data, baseRef: pr.snapshot.baseRef, shortBaseSha: shortSha(plan.baseSha ?? '') });
  return kept;
}

async function samePlanFiles(approved: ProjectPlan, now: ProjectPlan): Promise<boolean> {
  if (!approved.showJsonFile || !approved.planTextFile || !now.showJsonFile || !now.planTextFile) return false;
  try {
    return (await comparePlans({ approved: { showJsonFile: approved.showJsonFile, planTextFile: approved.planTextFile }, current: { showJsonFile: now.showJsonFile, planTextFile: now.planTextFile } })).same;
  } catch (err) {
    // The approved plan's files are gone: ask again rather than guess.
    if (!(err instanceof ActivityFailure)) throw err;
    return false;
  }
}
