// A push moves the base of every open PR into its branch. Each PR whose plan the push touched is told at
// once (its plan is outdated: nothing applies from it) and then planned again against the new base, at
// most `replanOnBaseChange.concurrency` at a time: the push workflow hands out turns and each PR says
// when its new plan is done. PRs the push did not touch keep their plans.
import { condition, getExternalWorkflowHandle, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ProjectSelection } from '../shared/activity-contracts.ts';
import { DEFAULT_REPLAN_CONCURRENCY } from '../shared/config.ts';
import { PR_EVENT_SIGNAL, baseMovedReplySignal, prWorkflowId, type BaseChange, type BaseMovedReply, type PrEvent, type RepoRef } from '../shared/contracts.ts';
import { openPullRequests } from './activities.ts';

/** How long a PR may take to answer, and to plan again, before its turn goes to the next. */
export const ANSWER_TIMEOUT = '10 minutes';
export const REPLAN_TIMEOUT = '1 hour';

/** What the push changed, as the PR workflows judge it: the projects it affects, or all when the pushed config is broken. */
export function baseChangeOf(pushed: Pick<ProjectSelection, 'configErrors' | 'projects'>): BaseChange {
  if (pushed.configErrors?.length || !pushed.projects) return { all: true };
  return { projects: pushed.projects.map((p) => ({ name: p.name, dir: p.dir, workspace: p.workspace })) };
}

async function signalPr(repo: RepoRef, number: number, event: PrEvent): Promise<boolean> {
  try {
    await getExternalWorkflowHandle(prWorkflowId(repo.owner, repo.name, number)).signal(PR_EVENT_SIGNAL, event);
    return true;
  } catch (err) {
    // A PR opened before Terrapin was installed (or whose workflow ended) has no plan to outdate.
    log.info('no PR workflow to tell', { pr: number, error: String(err) });
    return false;
  }
}

/** Tells the open PRs into `branch` that it moved to `after`, and re-plans those it outdated; returns them. */
export async function replanOpenPrs(repo: RepoRef, branch: string, after: string, actor: string, change: BaseChange, concurrency = DEFAULT_REPLAN_CONCURRENCY): Promise<number[]> {
  const numbers = await openPullRequests({ repo, base: branch });
  if (numbers.length === 0) return [];
  const answers = new Map<number, BaseMovedReply['kind']>();
  const done = new Set<number>();
  setHandler(baseMovedReplySignal, (r) => {
    if (r.baseSha !== after) return;
    if (r.kind === 'replanned') done.add(r.pr);
    else answers.set(r.pr, r.kind);
  });
  const replyTo = workflowInfo().workflowId;

  // At once, every PR: a plan the push touched is outdated from now on.
  const asked: number[] = [];
  for (const number of numbers) {
    if (await signalPr(repo, number, { type: 'base-moved', deliveryId: `base-moved-${after}`, baseRef: branch, baseSha: after, actor, touched: change, replyTo })) asked.push(number);
  }
  if (!(await condition(() => asked.every((n) => answers.has(n)), ANSWER_TIMEOUT))) {
    log.warn('PRs that did not answer', { prs: asked.filter((n) => !answers.has(n)) });
  }

  // Then their new plans, `concurrency` at a time, in PR order.
  const stale = asked.filter((n) => answers.get(n) === 'stale');
  const limit = Math.max(1, concurrency);
  const inFlight: number[] = [];
  const busy = () => inFlight.filter((n) => !done.has(n));
  const replanned: number[] = [];
  for (const number of stale) {
    if (busy().length >= limit && !(await condition(() => busy().length < limit, REPLAN_TIMEOUT))) {
      // The oldest turn took too long: it keeps planning, but no longer holds up the others.
      const slow = busy()[0]!;
      log.warn('re-plan took too long; next PR', { pr: slow });
      done.add(slow);
    }
    if (await signalPr(repo, number, { type: 'base-replan', deliveryId: `base-replan-${after}`, baseSha: after, actor, replyTo })) {
      inFlight.push(number);
      replanned.push(number);
    }
  }
  await condition(() => busy().length === 0, REPLAN_TIMEOUT);
  return replanned;
}
