// The PR's side of the project lock queue. A plan refused for a project another PR holds waits in line
// (the lock keeps the line, workflows/lock.ts); the lock tells the PR when it is its turn. A plan refused
// for several projects runs again once the PR holds every lock it waited for — one plan of them all, as
// the refused plan covered them, not one partial plan per project. A lock that `lock.ttl` took back
// discards the plan that used it (as `/unlock` does): nothing applies without its lock.
import { lockWorkflowId, type LockNotice } from '../../shared/contracts.ts';
import type { ProjectPlan } from '../projects.ts';
import type { PrSession } from './session.ts';
import type { LockWait } from './state.ts';

const lockIdOf = (pr: PrSession, p: { dir: string; workspace: string }) => lockWorkflowId(pr.repo.owner, pr.repo.name, p.dir, p.workspace);

/**
 * lock: onPlan — takes each project's lock. A project another PR holds is marked locked (not planned) with
 * its holder and this PR's place in line; the plan then waits for those locks. `ttl` is the default
 * branch's `lock.ttl`, as read for this plan.
 */
export async function lockForPlan(pr: PrSession, projects: ProjectPlan[], ttl: string | undefined, scope: LockWait['scope'], by: string): Promise<void> {
  pr.s.lockTtl = ttl;
  const onPlan = projects.filter((p) => p.lock === 'onPlan');
  const asked = onPlan.map((p) => lockIdOf(pr, p));
  // A plan is activity on this PR: the locks it holds for other projects are kept too.
  await pr.touchLocks(asked);
  await Promise.all(
    onPlan.map(async (p) => {
      const answer = await pr.lock(p);
      if (!answer.granted) Object.assign(p, { status: 'locked', lockedBy: answer.holder?.pr, lockPlace: answer.place });
    }),
  );
  const previous = pr.s.lockWait;
  const waits = onPlan.filter((p) => p.status === 'locked' && p.lockPlace !== undefined).map((p) => lockIdOf(pr, p));
  pr.s.lockWait = waits.length > 0 ? { scope, by, lockIds: waits } : undefined;
  // A line this PR waited in for a project this plan no longer covers: leave it (or give the lock back).
  for (const lockId of previous?.lockIds ?? []) if (!asked.includes(lockId)) await pr.releaseLock(lockId);
  // A turn that came while the plan was asking.
  await planWhenUnlocked(pr);
}

/** A notice from a lock: it is this PR's now (its turn came), or `lock.ttl` took it back. */
export async function onLockNotice(pr: PrSession, notice: LockNotice): Promise<void> {
  if (notice.kind === 'granted') return planWhenUnlocked(pr, notice);
  const { s } = pr;
  const name = pr.lockName(notice.lockId);
  s.locks = (s.locks ?? []).filter((id) => id !== notice.lockId);
  const plan = s.plan;
  const discarded = plan?.status === 'ready' && plan.projects.some((p) => lockIdOf(pr, p) === notice.lockId);
  if (discarded) {
    await pr.retirePlan('discarded');
    s.plan = undefined;
  }
  await pr.post(`lock-expired-${notice.id}`, 'replies/lock-expired', { name, ttl: notice.ttl, discarded });
}

/** Plans the PR again (its head now, as the refused plan was scoped) once it holds every lock it waits for. */
async function planWhenUnlocked(pr: PrSession, notice?: LockNotice): Promise<void> {
  const { s } = pr;
  const wait = s.lockWait;
  const held = s.locksHeld ?? [];
  if (!wait || !wait.lockIds.every((id) => held.includes(id))) return;
  s.lockWait = undefined;
  s.wantPlan = pr.snapshot.headSha;
  s.wantPlanScope = wait.scope;
  s.wantPlanBy = wait.by;
  const data = {
    names: wait.lockIds.map((id) => pr.lockName(id)),
    ...(notice?.previous ? { previousPr: notice.previous.pr, reason: notice.reason, ttl: notice.ttl } : {}),
  };
  await pr.post(`lock-free-${s.planSeq}`, 'replies/lock-granted', data);
}
