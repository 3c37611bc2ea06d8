// Commands on a project's drift issue. Reconciling (`drift: { reconcile: true }`): a drift check offers
// its saved plan; an `/approve` on the issue by someone `permissions.approve` allows applies exactly that
// plan (hash-checked, like a PR's), then the issue is closed. `/drift` on the issue checks again.
// One workflow per project: drift-reconcile:{owner}/{repo}:{project}. A newer check's offer replaces an
// older one; with no approval for 30 days the offer lapses.
import { condition, log, setHandler } from '@temporalio/workflow';
import { reconcileSignal, type ReconcileEvent, type ReconcileInput } from '../shared/contracts.ts';
import { closeDrift, getPermission, postComment, reactToComment, searchAttributesRegistered, startDriftRuns } from './activities.ts';
import { judgeActor, permissionsAt } from './authorize.ts';
import { startRun } from './project-run.ts';

const NO_HOOKS = { prePlan: [], postPlan: [], preApply: [], postApply: [] };

export async function driftReconcileWorkflow({ repo, project }: ReconcileInput): Promise<'applied' | 'failed' | 'lapsed'> {
  let offer: Extract<ReconcileEvent, { type: 'offer' }> | undefined;
  /** When the current offer arrived (workflow time): an `/approve` written before it never saw its plan. */
  let offeredAt = 0;
  const approvals: Array<Extract<ReconcileEvent, { type: 'approve' | 'drift' }>> = [];
  const seen = new Set<string>();
  let runs = 0;
  setHandler(reconcileSignal, (event) => {
    if (event.type === 'offer') {
      offer = event;
      // From when the drift issue showed this plan, not when this workflow heard of it: an approval written in
      // between is about this plan.
      offeredAt = event.shownFrom ?? Date.now();
      return;
    }
    // A comment counts once: the delivery id is unsigned, so a re-sent body carries a new one.
    const key = `comment:${event.commentId}`;
    if (seen.has(event.deliveryId) || seen.has(key)) return;
    seen.add(event.deliveryId);
    seen.add(key);
    approvals.push(event);
  });

  const reply = (issueNumber: number, key: string, template: string, data: Record<string, unknown>, files?: Record<string, string>) =>
    postComment({ repo, number: issueNumber, key, message: { template: `drift/${template}`, data: { project, ...data }, files } });

  for (;;) {
    if (!(await condition(() => approvals.length > 0, '30 days'))) return 'lapsed';
    const approval = approvals.shift()!;
    await reactToComment({ repo, commentId: approval.commentId });
    if (approval.type === 'approve' && offer) {
      // Applying a fix-plan is an approval: `permissions.approve` of the config the drift check ran at.
      const rule = (await permissionsAt(repo, offer.sha)).approve;
      const verdict = await judgeActor(repo, rule, { login: approval.actor, isAuthor: false, number: approval.issueNumber, headSha: offer.sha });
      if (!verdict.allowed) {
        const data = verdict.because === 'not-listed' ? { actor: approval.actor, users: verdict.users, teams: verdict.teams } : { actor: approval.actor, required: verdict.because === 'level' ? verdict.required : 'write' };
        await reply(approval.issueNumber, `reply-${approval.deliveryId}`, verdict.because === 'not-listed' ? 'reconcile-not-listed' : 'reconcile-not-allowed', data);
        continue;
      }
    } else {
      const permission = await getPermission({ repo, login: approval.actor });
      if (permission !== 'write' && permission !== 'admin') {
        await reply(approval.issueNumber, `reply-${approval.deliveryId}`, 'reconcile-not-allowed', { actor: approval.actor });
        continue;
      }
    }
    if (approval.type === 'drift') {
      // `/drift` on the issue: check again now; a new fix-plan (if any) replaces the one offered.
      const runs = await startDriftRuns({ repo, projects: [project], actor: approval.actor });
      await reply(approval.issueNumber, `reply-${approval.deliveryId}`, 'check-started', { running: runs.running.length > 0 });
      continue;
    }
    if (!offer) {
      await reply(approval.issueNumber, `reply-${approval.deliveryId}`, 'reconcile-nothing', {});
      continue;
    }
    if (approval.createdAt && Date.parse(approval.createdAt) < Math.floor(offeredAt / 1000) * 1000) {
      await reply(approval.issueNumber, `reply-${approval.deliveryId}`, 'reconcile-approval-outdated', { actor: approval.actor, shortSha: offer.sha.slice(0, 7) });
      continue;
    }
    const chosen = offer;
    const { target } = chosen;
    const run = await startRun(
      {
        repo,
        kind: 'apply',
        record: { trigger: 'drift', actor: approval.actor, approvers: [approval.actor] },
        recorded: await searchAttributesRegistered(),
        source: { prNumber: 0, cloneUrl: repo.cloneUrl, sha: chosen.sha },
        project: { name: project, dir: target.projectDir, workspace: target.workspace, binary: target.binary, env: chosen.env ?? {}, hooks: NO_HOOKS, inputs: {} },
        known: [],
        label: target.label,
        plan: { planFile: chosen.planFile, planSha256: chosen.planSha256 },
      },
      () => ++runs,
    );
    const key = `reconcile-${chosen.planSha256.slice(0, 12)}`;
    if (run.outcome === 'stale' || run.outcome === 'unknown') {
      // A plan changed or gone is never applied; anything else has an unknown outcome: a person looks.
      log.warn('reconcile apply did not run to completion', { error: run.failure?.error });
      await reply(chosen.issueNumber, key, 'reconcile-stale', { actor: approval.actor, shortSha: chosen.sha.slice(0, 7) });
      return 'failed';
    }
    const outcome = run.outcome === 'applied' ? 'applied' : 'failed';
    const files = run.logFile ? { output: run.logFile } : undefined;
    await reply(chosen.issueNumber, key, outcome === 'applied' ? 'reconciled' : 'reconcile-failed', { actor: approval.actor, sha: chosen.sha, shortSha: chosen.sha.slice(0, 7) }, files);
    if (outcome === 'applied') await closeDrift({ repo, project, sha: chosen.sha });
    return outcome;
  }
}
