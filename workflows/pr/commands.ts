// One handler per command; this module routes a command event to its handler. Plan and cancel live in
// plan.ts, approve and apply in apply.ts; the small ones are here.
import { reactToComment, removeWorkDirs, startDriftRuns } from '../activities.ts';
import { onApply, onApprove, onApprovePolicies } from './apply.ts';
import { authorized, turnedAway, type CommandEvent } from './gate.ts';
import { onCancel, onPlan } from './plan.ts';
import type { PrSession } from './session.ts';

export async function onCommand(pr: PrSession, event: CommandEvent): Promise<void> {
  if (await turnedAway(pr, event)) return;
  // The 👀 goes out beside the command's own steps, not before them: it depends on none of them.
  const reacted = event.commentId ? reactToComment({ repo: pr.repo, commentId: event.commentId }) : undefined;
  await Promise.all([reacted, handle(pr, event)]);
}

async function handle(pr: PrSession, event: CommandEvent): Promise<void> {
  // A command is activity on the PR: with `lock.ttl`, the locks it holds are kept.
  await pr.touchLocks();
  if (pr.snapshot.state === 'closed') {
    // A drift check runs at the default branch: a closed PR names its projects as well as an open one.
    if (event.command.name === 'drift') return onDrift(pr, event);
    await pr.reply(event.deliveryId, 'pr-closed', { command: event.command.name });
    return;
  }
  return HANDLERS[event.command.name](pr, event);
}

const HANDLERS: Record<CommandEvent['command']['name'], (pr: PrSession, event: CommandEvent) => Promise<void>> = {
  help: onHelp,
  plan: onPlan,
  approve: onApprove,
  apply: onApply,
  unlock: onUnlock,
  cancel: onCancel,
  drift: onDrift,
  'approve-policies': onApprovePolicies,
};

/** `/help`: the commands. */
async function onHelp(pr: PrSession, event: CommandEvent): Promise<void> {
  await pr.reply(event.deliveryId, 'help', {});
}

/** `/unlock`: discards this PR's plan, releases its project locks (the next PR in line for each gets it) and leaves every line it waits in. */
async function onUnlock(pr: PrSession, event: CommandEvent): Promise<void> {
  if (!(await authorized(pr, 'unlock', event.actor, event.deliveryId))) return;
  if (pr.job) {
    await pr.reply(event.deliveryId, 'busy', { command: 'unlock', job: pr.job.kind });
    return;
  }
  await pr.retirePlan('discarded');
  pr.s.plan = undefined;
  // Answered first: the next PR in line is told it has the lock after this PR is told it let go.
  await pr.reply(event.deliveryId, 'unlocked', {});
  await pr.releaseLocks();
  await removeWorkDirs({ repo: pr.repo, prNumber: pr.number });
}

/** `/drift [-p project]`: checks the named project, or this PR's projects, at the default branch now. */
export async function onDrift(pr: PrSession, event: CommandEvent): Promise<void> {
  const { actor, deliveryId, command } = event;
  if (!(await pr.hasWrite(actor))) {
    await pr.reply(deliveryId, 'not-allowed', { actor, command: 'drift', required: 'write' });
    return;
  }
  const projects = command.project ? [command.project] : (pr.s.plan?.projects ?? []).map((p) => p.name);
  if (projects.length === 0) {
    await pr.reply(deliveryId, 'drift-needs-project', {});
    return;
  }
  const runs = await startDriftRuns({ repo: pr.repo, projects, actor });
  await pr.reply(deliveryId, 'drift-started', runs);
}
