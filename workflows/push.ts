// A push to the default branch (id push:{owner}/{repo}:{sha}): keeps the drift schedules in line with the
// pushed `.terrapin.yml`, outdates and re-plans the open PRs into the branch whose projects it touched
// (push-replan.ts), and, with `deployOnPush: true`, queues the pushed commit on the deploy workflow of
// every `apply: afterMerge` project it changes. A push that a PR's merge made is deployed by that PR's
// workflow, with the PR's approvals.
import { ActivityFailure, log } from '@temporalio/workflow';
import type { PushInput, PushOutcome } from '../shared/contracts.ts';
import { mergedPrOf, selectProjects, syncDriftSchedulesAtHead } from './activities.ts';
import { queueDeploys } from './deploy-queue.ts';
import { baseChangeOf, replanOpenPrs } from './push-replan.ts';
import { failureMessage } from './project-run.ts';

export async function pushWorkflow({ repo, before, after, actor, branch }: PushInput): Promise<PushOutcome> {
  try {
    await syncDriftSchedulesAtHead({ repo });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.error('could not sync drift schedules', { error: failureMessage(err) });
  }
  const pr = await mergedPrOf({ repo, sha: after });
  const known = /^[0-9a-f]{40,64}$/.test(before) && !/^0+$/.test(before);
  const pushed = await selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, sha: after, ...(known ? { baseSha: before } : { compareWithParent: true }) });
  const replanned = await replanOpenPrs(repo, branch ?? pushed.defaultBranch ?? 'main', after, actor, baseChangeOf(pushed), pushed.replanConcurrency, pr);
  const also = replanned.length ? { replanned } : {};
  if (pr !== undefined) return { skipped: 'merged-pr', pr, ...also };
  if (pushed.configErrors?.length) return { skipped: 'config-error', ...also };
  if (!pushed.deployOnPush) return { skipped: 'not-enabled', ...also };
  const names = await queueDeploys(repo, pushed.projects ?? [], async () => ({ sha: after, trigger: 'push', actor }));
  return { queued: names, ...also };
}
