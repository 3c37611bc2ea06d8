// The PR workflow: one durable run per pull request (id pr:{owner}/{repo}#{number}). Webhooks arrive as
// signals on one queue; the main loop handles them one at a time (commands: pr/commands.ts), while a plan
// or an apply runs as a background job, so commands are answered and a push cancels a stale plan while
// terraform works. After close it cleans up and, once merged, follows the deploys it queued (pr/merged.ts).
// Deterministic only: every side effect is an activity or a child run.
import { ActivityFailure, condition, continueAsNew, log, setHandler, workflowInfo } from '@temporalio/workflow';
import { prEventSignal, prStateQuery, type PrEvent, type PrOutcome, type PrStatus, type PrWorkflowInput } from '../shared/contracts.ts';
import { getPullRequest, reactToComment } from './activities.ts';
import { failureMessage } from './project-run.ts';
import { onCommand } from './pr/commands.ts';
import { LOGINS_LIMIT, SEEN_LIMIT, countsOnce, remember, sameLogin, turnedAway } from './pr/gate.ts';
import { onLockNotice } from './pr/locks.ts';
import { closePr, onMergedEvent } from './pr/merged.ts';
import { onBaseMoved, onBaseReplan } from './pr/base.ts';
import { startPlan } from './pr/plan.ts';
import { PrSession } from './pr/session.ts';

export async function prWorkflow(input: PrWorkflowInput): Promise<PrOutcome> {
  const pr = new PrSession(input);
  const { s } = pr;

  setHandler(prEventSignal, (event) => {
    if (s.seen.includes(event.deliveryId)) return;
    remember(s.seen, event.deliveryId, SEEN_LIMIT);
    s.queue.push(event);
    // A plan for an older head is worthless: stop it now rather than when the event is handled (unless the
    // event itself is older than what the workflow knows: a late `opened` must not stop the newer plan).
    const stale = Date.parse(event.type === 'pr-updated' ? (event.pr.updatedAt ?? '') : '') < Date.parse(s.snapshot?.updatedAt ?? '');
    if (event.type === 'pr-updated' && !stale && pr.job?.kind === 'plan' && pr.job.sha !== event.pr.headSha) pr.job.scope.cancel();
  });
  setHandler(prStateQuery, () => status(pr));

  /** Handles one event; a GitHub call that kept failing is logged, and the next event is taken. */
  async function handle(event: PrEvent, handler: (event: PrEvent) => Promise<void>): Promise<void> {
    pr.nextEvent();
    try {
      await handler(event);
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.error('event handling failed', { type: event.type, deliveryId: event.deliveryId, error: failureMessage(err) });
    }
    // Before the event counts as handled: whoever waits for it sees the attribute it set.
    await pr.syncWaiting();
    remember((s.handled ??= []), event.deliveryId, SEEN_LIMIT);
  }

  s.snapshot ??= await getPullRequest({ repo: pr.repo, number: pr.number });
  // A comment on a closed PR starts a run that no `closed` event will ever end: it answers, then ends
  // (unless the PR is reopened meanwhile).
  const startedClosed = !s.closed && s.snapshot.state === 'closed';
  const idleWhileClosed = () => startedClosed && s.snapshot?.state === 'closed' && s.queue.length === 0 && !pr.job && s.wantPlan === undefined;

  while (!s.closed) {
    await condition(() => s.queue.length > 0 || pr.jobError !== undefined || (s.wantPlan !== undefined && !pr.job) || (!pr.job && workflowInfo().continueAsNewSuggested) || idleWhileClosed());
    if (pr.jobError) throw pr.jobError;
    const event = s.queue.shift();
    if (event) await handle(event, (e) => onEvent(pr, e));
    else if (s.wantPlan !== undefined && !pr.job) {
      const [sha, scope, by] = [s.wantPlan, s.wantPlanScope, s.wantPlanBy];
      s.wantPlan = s.wantPlanScope = s.wantPlanBy = undefined;
      startPlan(pr, sha, scope, by);
    } else if (idleWhileClosed()) break;
    else {
      log.info('continuing as new', { queued: s.queue.length });
      // The next run starts with this run's search attributes: TerrapinWaiting must be current.
      await pr.syncWaiting();
      await continueAsNew<typeof prWorkflow>({ pr: input.pr, carried: s });
    }
  }
  if (!s.closed) return { merged: false, closedBefore: true };

  // A run continued as new while following deploys did all this already.
  if (!s.deploys) {
    if (pr.job?.kind === 'plan') pr.job.scope.cancel();
    await condition(() => !pr.job);
    if (pr.jobError) throw pr.jobError;
    await closePr(pr);
  }
  // Stays reachable while this PR's deploys run: `/approve` on the merged PR goes to a deploy that waits.
  while (s.deploys?.some((d) => d.status !== 'finished')) {
    if (!(await condition(() => s.queue.length > 0 || workflowInfo().continueAsNewSuggested, '60 days'))) break;
    const event = s.queue.shift();
    if (!event) {
      await pr.syncWaiting();
      await continueAsNew<typeof prWorkflow>({ pr: input.pr, carried: s });
    } else if (event.type === 'base-moved' || event.type === 'base-replan') await handle(event, (e) => onEvent(pr, e));
    else await handle(event, (e) => onMergedEvent(pr, e, (bad) => onEvent(pr, bad)));
  }
  return { merged: s.closed.merged, lastPlan: s.plan && { sha: s.plan.sha, status: s.plan.status } };
}

async function onEvent(pr: PrSession, event: PrEvent): Promise<void> {
  const { s } = pr;
  if (!countsOnce(pr, event)) return;
  switch (event.type) {
    case 'pr-updated': {
      // Whoever pushed to the head is an author of the change (even when the event itself is late).
      if (event.action === 'opened' || event.action === 'reopened' || event.action === 'synchronize') {
        s.pushers ??= [];
        if (!s.pushers.some((l) => sameLogin(l, event.actor))) remember(s.pushers, event.actor, LOGINS_LIMIT);
      }
      // A delivery older than what the workflow knows (opened arriving after synchronize) changes nothing.
      if (Date.parse(event.pr.updatedAt ?? '') < Date.parse(s.snapshot?.updatedAt ?? '')) {
        log.info('older pull_request event ignored', { deliveryId: event.deliveryId, action: event.action });
        return;
      }
      s.snapshot = event.pr;
      if (s.plan && s.plan.sha !== event.pr.headSha) await pr.retirePlan('superseded');
      if (pr.job?.kind === 'plan' && pr.job.sha !== event.pr.headSha) pr.job.scope.cancel();
      // Drafts wait until they are ready for review; a later event of the same burst wins.
      const newer = (e: PrEvent) => e.type === 'pr-updated' && !(Date.parse(e.pr.updatedAt ?? '') < Date.parse(event.pr.updatedAt ?? ''));
      const waits = event.pr.draft || event.action === 'converted_to_draft' || s.queue.some(newer);
      s.wantPlan = waits ? undefined : event.pr.headSha;
      s.wantPlanScope = undefined;
      s.wantPlanBy = event.actor;
      return;
    }
    case 'pr-closed':
      s.closed = { merged: event.merged, mergeCommitSha: event.mergeCommitSha, actor: event.actor };
      return;
    case 'deploy-status':
      // Only a merged PR's workflow follows deploys; an open one has none.
      return;
    case 'bad-command':
      if (await turnedAway(pr, event)) return;
      await reactToComment({ repo: pr.repo, commentId: event.commentId });
      if (event.parse.kind === 'unknown') await pr.reply(event.deliveryId, 'unknown-command', { word: event.parse.word, suggestion: event.parse.suggestion });
      else await pr.reply(event.deliveryId, 'invalid-command', { command: event.parse.name, error: event.parse.error });
      return;
    case 'command':
      return onCommand(pr, event);
    case 'lock':
      return onLockNotice(pr, event.notice);
    case 'base-moved':
      return onBaseMoved(pr, event);
    case 'base-replan':
      return onBaseReplan(pr, event);
  }
}

function status({ s, job }: PrSession): PrStatus {
  return {
    headSha: s.snapshot?.headSha,
    plan: s.plan && {
      id: s.plan.id,
      sha: s.plan.sha,
      status: s.plan.status,
      summary: s.plan.summary.line,
      planSha256: s.plan.projects.length === 1 ? (s.plan.projects[0]!.planSha256 ?? '') : '',
      projects: s.plan.projects.map((p) => ({ name: p.name, status: p.status, planSha256: p.planSha256 })),
    },
    approvals: s.approvals.map((a) => a.actor),
    job: job?.kind,
    queued: s.queue.length,
    handled: [...(s.handled ?? [])],
    deploys: s.deploys?.map((d) => ({ project: d.project, status: d.status })),
    ...(s.lockWait ? { lockWait: s.lockWait.lockIds.filter((id) => !(s.locksHeld ?? []).includes(id)) } : {}),
  };
}
