// A push moves the base of every open PR into its branch. Each PR whose plan the push touched is told at
// once (its plan is outdated: nothing applies from it) and then planned again against the new base, at
// most `replanOnBaseChange.concurrency` at a time: the push workflow hands out turns and each PR says
// when its new plan is done. PRs the push did not touch keep their plans.
import { condition, getExternalWorkflowHandle, log, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { ProjectSelection } from '../shared/activity-contracts.ts';
import { DEFAULT_REPLAN_CONCURRENCY } from '../shared/config.ts';
import { PR_EVENT_SIGNAL, baseMovedReplySignal, prWorkflowId, type BaseChange, type BaseMovedReply, type PrEvent, type RepoRef } from '../shared/contracts.ts';
import { openPullRequests, workflowRunning } from './activities.ts';

/** How long a PR may take to answer, and to plan again, before its turn goes to the next. */
export const ANSWER_TIMEOUT = '10 minutes';
export const REPLAN_TIMEOUT = '1 hour';
/** How long new plans wait for the deploys of the merge that moved the base, and how often they look. */
export const DEPLOYS_WAIT_MS = 15 * 60_000;
const DEPLOYS_POLL = '10 seconds';

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

/**
 * Tells the open PRs into `branch` that it moved to `after`, and re-plans those it outdated; returns them.
 * When the push is PR `mergedPr`'s merge, the new plans wait (a while) for that PR's deploys: planned
 * before its `apply: afterMerge` projects are applied, they would show its changes as theirs.
 */
export async function replanOpenPrs(
  repo: RepoRef,
  branch: string,
  after: string,
  actor: string,
  change: BaseChange,
  concurrency = DEFAULT_REPLAN_CONCURRENCY,
  mergedPr?: number,
): Promise<number[]> {
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
  if (stale.length > 0 && mergedPr !== undefined) await deploysOf(repo, mergedPr);
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

/** Waits while the merged PR's workflow follows its deploys (it ends once they have), at most DEPLOYS_WAIT_MS. */
async function deploysOf(repo: RepoRef, pr: number): Promise<void> {
  const workflowId = prWorkflowId(repo.owner, repo.name, pr);
  const until = Date.now() + DEPLOYS_WAIT_MS;
  while (await workflowRunning({ workflowId })) {
    if (Date.now() >= until) {
      log.warn('merged PR still deploying; planning anyway', { pr });
      return;
    }
    await sleep(DEPLOYS_POLL);
  }
}
