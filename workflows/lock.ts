// One durable lock per project (repo, dir, workspace): workflow id lock:{owner}/{repo}:{dir}:{workspace}.
// Requests arrive as signals (through signalWithStart, so the first one starts the lock); each answer
// goes back to the requesting workflow as a signal. A refused PR waits in line, first come first served
// (once per PR; asking again keeps its place); whenever the lock is freed — released, its holder no
// longer runs, or `lock.ttl` ran out without activity — the first in line gets it and is told with a
// notice signal, unasked. While held, the lock checks now and then that its holder still runs.
import { msToNumber, type Duration } from '@temporalio/common';
import { condition, continueAsNew, getExternalWorkflowHandle, log, setHandler, uuid4, workflowInfo } from '@temporalio/workflow';
import {
  LOCK_QUEUE_LIMIT,
  lockActivityQuery,
  lockAnswerSignal,
  lockHolderQuery,
  lockNoticeSignal,
  lockQueueQuery,
  lockRequestSignal,
  lockTtlMs,
  type LockHolder,
  type LockInput,
  type LockNotice,
  type LockRequest,
} from '../shared/contracts.ts';
import { workflowRunning } from './activities.ts';

export async function lockWorkflow(input: LockInput = {}): Promise<void> {
  const lockId = workflowInfo().workflowId;
  const checkEvery: Duration = input.holderCheckInterval ?? '10 minutes';
  let holder = input.holder;
  const waiting: LockHolder[] = [...(input.waiting ?? [])];
  /** Workflow time of the holder's last plan, apply or command (or of the grant). */
  let lastActivity = input.lastActivity ?? Date.now();
  let ttl = input.ttl;
  let nextHolderCheck = Date.now() + msToNumber(checkEvery);
  const requests: LockRequest[] = [];

  setHandler(lockRequestSignal, (request) => {
    requests.push(request);
  });
  setHandler(lockHolderQuery, () => holder);
  setHandler(lockQueueQuery, () => [...waiting]);
  setHandler(lockActivityQuery, () => ({ lastActivity, ...(ttl ? { ttl } : {}) }));

  const ttlMs = () => input.ttlOverrideMs ?? lockTtlMs(ttl);
  const same = (a: LockHolder | undefined, b: LockHolder) => a?.workflowId === b.workflowId;

  /** Signals a workflow; false when it is gone (ended, or never was). */
  async function tell(workflowId: string, send: (h: ReturnType<typeof getExternalWorkflowHandle>) => Promise<void>): Promise<boolean> {
    try {
      await send(getExternalWorkflowHandle(workflowId));
      return true;
    } catch (err) {
      log.warn('lock could not reach a workflow', { workflowId, error: String(err) });
      return false;
    }
  }

  async function answer(request: LockRequest, granted: boolean, place?: number): Promise<void> {
    const reached = await tell(request.holder.workflowId, (h) => h.signal(lockAnswerSignal, { requestId: request.requestId, lockId, granted, holder, ...(place ? { place } : {}) }));
    if (reached) return;
    // The requester is gone: a lock granted to it would never be released, a place kept for it never served.
    if (granted && request.kind === 'acquire' && same(holder, request.holder)) await freeLock('holder-gone');
    removeWaiting(request.holder);
  }

  function removeWaiting(who: LockHolder): void {
    const i = waiting.findIndex((w) => same(w, who));
    if (i >= 0) waiting.splice(i, 1);
  }

  /** The holder goes; the first in line that still runs gets the lock and is told so. */
  async function freeLock(reason: NonNullable<LockNotice['reason']>, previous = holder): Promise<void> {
    holder = undefined;
    while (!holder && waiting.length > 0) {
      const next = waiting.shift()!;
      holder = next;
      lastActivity = Date.now();
      const notice: LockNotice = { id: uuid4(), lockId, kind: 'granted', reason, ...(previous ? { previous } : {}), ...(reason === 'expired' && ttl ? { ttl } : {}) };
      if (!(await tell(next.workflowId, (h) => h.signal(lockNoticeSignal, notice)))) holder = undefined;
    }
  }

  async function handle(request: LockRequest): Promise<void> {
    const mine = same(holder, request.holder);
    if (request.ttl !== undefined || request.kind === 'acquire') ttl = request.ttl;
    if (request.kind === 'touch') {
      if (mine) lastActivity = Date.now();
      return;
    }
    if (request.kind === 'release') {
      // A release from the line is leaving it: the PR closed, re-planned without the project, or /unlock.
      removeWaiting(request.holder);
      const previous = holder;
      if (mine) holder = undefined;
      await answer(request, mine);
      if (mine) await freeLock('released', previous);
      return;
    }
    if (!holder) holder = request.holder;
    if (same(holder, request.holder)) {
      lastActivity = Date.now();
      await answer(request, true);
      return;
    }
    let place = waiting.findIndex((w) => same(w, request.holder)) + 1;
    // In line once; a request that does not wait (an apply) or a full line gets no place.
    if (place === 0 && request.wait !== false && waiting.length < LOCK_QUEUE_LIMIT) place = waiting.push(request.holder);
    await answer(request, false, place || undefined);
  }

  /** When the lock must next look at its holder: its TTL running out, or the liveness check. */
  function nextDeadline(): number | undefined {
    if (!holder) return undefined;
    const ms = ttlMs();
    return ms === undefined ? nextHolderCheck : Math.min(nextHolderCheck, lastActivity + ms);
  }

  for (;;) {
    const deadline = nextDeadline();
    const woken = await condition(() => requests.length > 0, deadline === undefined ? '1 day' : Math.max(1, deadline - Date.now()));
    if (!woken && holder) {
      const ms = ttlMs();
      if (ms !== undefined && Date.now() >= lastActivity + ms) {
        log.info('lock held without activity past its TTL; releasing', { holder: holder.workflowId, ttl });
        const expired = holder;
        await tell(expired.workflowId, (h) => h.signal(lockNoticeSignal, { id: uuid4(), lockId, kind: 'expired', ...(ttl ? { ttl } : {}) }));
        await freeLock('expired');
      } else if (Date.now() >= nextHolderCheck) {
        nextHolderCheck = Date.now() + msToNumber(checkEvery);
        if (!(await workflowRunning({ workflowId: holder.workflowId }))) {
          log.info('lock holder no longer runs; releasing', { holder: holder.workflowId });
          await freeLock('holder-gone');
        }
      }
    }
    while (requests.length > 0) await handle(requests.shift()!);
    // A free lock has nothing to remember: finish, and the next request starts a new run.
    if (!holder && waiting.length === 0 && requests.length === 0) return;
    if (workflowInfo().continueAsNewSuggested && requests.length === 0) {
      await continueAsNew<typeof lockWorkflow>({ holder, waiting, lastActivity, ttl, holderCheckInterval: input.holderCheckInterval, ttlOverrideMs: input.ttlOverrideMs });
    }
  }
}
