// After a PR closes: its plan retires and its locks go; a merge into the default branch syncs the drift
// schedules and queues the merge commit on the deploy workflow of every `apply: afterMerge` project it
// changes, with the plans approved here. The merged PR's workflow then stays reachable so that `/approve`
// reaches a deploy that waits for one.
import { ActivityFailure, log } from '@temporalio/workflow';
import type { PrEvent } from '../../shared/contracts.ts';
import { enqueueDeploy, keepApprovedPlan, reactToComment, removeWorkDirs, revisionFacts, selectProjects, syncDriftSchedulesAtHead } from '../activities.ts';
import { defaultBranchPolicy } from '../authorize.ts';
import { queueDeploys } from '../deploy-queue.ts';
import { failureMessage } from '../project-run.ts';
import { approvedForDeploy } from '../projects.ts';
import { onDrift } from './commands.ts';
import { countsOnce, knownAuthors, turnedAway } from './gate.ts';
import { shortSha, type PrSession } from './session.ts';
import type { DeployTracking } from './state.ts';

interface ApprovedAtMerge {
  name: string;
  planSha: string;
  showJsonFile: string;
  planTextFile: string;
  approvers: string[];
}

/** Closed or merged: stop planning, let a running apply finish (the caller waited), then clean up. */
export async function closePr(pr: PrSession): Promise<void> {
  const { s } = pr;
  const closed = s.closed!;
  // Read before retiring the plan, which forgets its approvals.
  const approved = approvedAtMerge(pr);
  await pr.retirePlan('closed');
  await pr.releaseLocks();
  // Deploys and drift schedules follow the default branch only: a merge into any other branch (even one
  // PRs may target) changes neither.
  const intoDefaultBranch = closed.merged && (await mergedIntoDefaultBranch(pr));
  if (intoDefaultBranch) {
    // A merge is how .terrapin.yml changes land: keep the drift schedules in line with the default branch.
    try {
      await syncDriftSchedulesAtHead({ repo: pr.repo });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.error('could not sync drift schedules', { error: failureMessage(err) });
    }
    if (closed.mergeCommitSha) s.deploys = await startDeploys(pr, closed.mergeCommitSha, closed.actor ?? pr.snapshot.author, approved);
  }
  await removeWorkDirs({ repo: pr.repo, prNumber: pr.number });
}

/**
 * Was the PR merged into the repository's default branch? Its base says so, and the merge commit is in
 * the default branch's history (a base changed without an event we saw cannot fool it). Unknown counts
 * as no: nothing deploys.
 */
async function mergedIntoDefaultBranch(pr: PrSession): Promise<boolean> {
  try {
    const baseRef = pr.snapshot.baseRef;
    const policy = await defaultBranchPolicy(pr.repo, pr.number, { baseBranch: baseRef, labels: [] });
    const mergeSha = pr.s.closed?.mergeCommitSha;
    // One history mirror for every PR's merges (not per PR: each is the repository's whole history).
    const reachable = !mergeSha || mergeSha === policy.sha || (await revisionFacts({ repo: pr.repo, project: '_merges', sha: mergeSha, newer: policy.sha })).olderThanNewer === true;
    if (policy.branch === baseRef && reachable) return true;
    log.info('not merged into the default branch: no deploys', { baseRef, defaultBranch: policy.branch, mergeSha });
    return false;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.error('could not read the default branch', { error: failureMessage(err) });
    return false;
  }
}

/** The merged head's `apply: afterMerge` projects approved here, their plan files and approvers. */
function approvedAtMerge(pr: PrSession): ApprovedAtMerge[] {
  const plan = pr.s.plan;
  // A plan whose base moved under its projects shows no longer what the merge does: its approvals do not count.
  if (!plan || plan.sha !== pr.s.snapshot?.headSha || plan.baseMoved) return [];
  return approvedForDeploy(plan.projects).map((p) => ({
    name: p.name,
    planSha: plan.sha,
    showJsonFile: p.showJsonFile!,
    planTextFile: p.planTextFile!,
    approvers: pr.s.approvals.filter((a) => a.planId === plan.id && a.project === p.name).map((a) => a.actor),
  }));
}

/**
 * Queues the merge commit on the deploy workflow of every `apply: afterMerge` project it changes, with
 * the plan approved on this PR (kept past the work dir's removal) and the order the projects depend on.
 */
async function startDeploys(pr: PrSession, mergeSha: string, actor: string, approved: ApprovedAtMerge[]): Promise<DeployTracking[]> {
  const { repo, number } = pr;
  const data = { sha: mergeSha, shortSha: shortSha(mergeSha) };
  try {
    const merged = await selectProjects({ repo, prNumber: number, cloneUrl: repo.cloneUrl, sha: mergeSha, compareWithParent: true });
    if (merged.configErrors?.length) {
      await pr.post(`deploy-${mergeSha}`, 'deploy/not-queued', { ...data, errors: merged.configErrors });
      return [];
    }
    const names = await queueDeploys(repo, merged.projects ?? [], async (p) => {
      const ok = approved.find((x) => x.name === p.name);
      const kept = ok && (await keepApprovedPlan({ repo, prNumber: number, project: p.name, sha: ok.planSha, showJsonFile: ok.showJsonFile, planTextFile: ok.planTextFile }));
      const approvedPlan = kept ? { ...kept, approvers: ok!.approvers } : undefined;
      return { sha: mergeSha, trigger: 'merge', actor, pr: { number, author: pr.snapshot.author, authors: knownAuthors(pr) }, approved: approvedPlan };
    });
    if (names.length > 0) await pr.post(`deploy-${mergeSha}`, 'deploy/queued', { ...data, names });
    return names.map((project) => ({ project, sha: mergeSha, status: 'queued' }));
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.error('could not queue deploys', { error: failureMessage(err) });
    await pr.post(`deploy-${mergeSha}`, 'deploy/not-queued', { ...data, error: failureMessage(err) });
    return [];
  }
}

/** An event after the merge: a deploy's news, or a command — only `/approve` (for a waiting deploy) and `/drift` act. */
export async function onMergedEvent(pr: PrSession, event: PrEvent, onBadCommand: (event: PrEvent) => Promise<void>): Promise<void> {
  const deploys = pr.s.deploys!;
  if (event.type === 'deploy-status') {
    const d = deploys.find((x) => x.project === event.project && x.sha === event.sha);
    if (d && d.status !== 'finished') d.status = event.status;
    return;
  }
  if (event.type === 'bad-command') return onBadCommand(event);
  if (event.type !== 'command' || !countsOnce(pr, event)) return;
  if (await turnedAway(pr, event)) return;
  if (event.commentId) await reactToComment({ repo: pr.repo, commentId: event.commentId });
  if (event.command.name === 'drift') return onDrift(pr, event);
  if (event.command.name !== 'approve') {
    await pr.reply(event.deliveryId, 'pr-closed', { command: event.command.name });
    return;
  }
  const waiting = deploys.filter((d) => d.status === 'waiting' && (!event.command.project || d.project === event.command.project));
  if (waiting.length === 0) {
    await pr.post(`reply-${event.deliveryId}`, 'deploy/nothing-waiting', { actor: event.actor, project: event.command.project });
    return;
  }
  for (const d of waiting) {
    const approval = { type: 'approve' as const, deliveryId: event.deliveryId, actor: event.actor, sha: d.sha, prNumber: pr.number, ...(event.createdAt ? { createdAt: event.createdAt } : {}) };
    await enqueueDeploy({ repo: pr.repo, project: d.project, event: approval });
  }
}
