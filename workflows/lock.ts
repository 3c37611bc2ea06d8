// One durable lock per project (repo, dir, workspace): workflow id lock:{owner}/{repo}:{dir}:{workspace}.
// Requests arrive as signals (through signalWithStart, so the first one starts the lock); each answer
// goes back to the requesting workflow as a signal. While held, the lock checks now and then that its
// holder still runs, so a PR workflow that ended without releasing (terminated, failed) frees it too.
import type { Duration } from '@temporalio/common';
import { condition, continueAsNew, getExternalWorkflowHandle, log, setHandler, workflowInfo } from '@temporalio/workflow';
import { lockAnswerSignal, lockHolderQuery, lockRequestSignal, type LockInput, type LockRequest } from '../shared/contracts.ts';
import { workflowRunning } from './activities.ts';

export async function lockWorkflow(input: LockInput = {}): Promise<void> {
  const lockId = workflowInfo().workflowId;
  const checkEvery: Duration = input.holderCheckInterval ?? '10 minutes';
  let holder = input.holder;
  const queue: LockRequest[] = [];

  setHandler(lockRequestSignal, (request) => {
    queue.push(request);
  });
  setHandler(lockHolderQuery, () => holder);

  async function answer(request: LockRequest, granted: boolean): Promise<void> {
    try {
      await getExternalWorkflowHandle(request.holder.workflowId).signal(lockAnswerSignal, {
        requestId: request.requestId,
        lockId,
        granted,
        holder,
      });
    } catch (err) {
      // The requester is gone: a lock granted to it would never be released.
      log.warn('lock requester unreachable', { requester: request.holder.workflowId, error: String(err) });
      if (granted && request.kind === 'acquire' && holder?.workflowId === request.holder.workflowId) holder = undefined;
    }
  }

  for (;;) {
    const woken = await condition(() => queue.length > 0, holder ? checkEvery : '1 day');
    if (!woken) {
      if (holder && !(await workflowRunning({ workflowId: holder.workflowId }))) {
        log.info('lock holder no longer runs; releasing', { holder: holder.workflowId });
        holder = undefined;
      }
    }
    while (queue.length > 0) {
      const request = queue.shift()!;
      const mine = holder?.workflowId === request.holder.workflowId;
      if (request.kind === 'acquire') {
        holder ??= request.holder;
        await answer(request, holder.workflowId === request.holder.workflowId);
      } else {
        if (mine) holder = undefined;
        await answer(request, mine);
      }
    }
    // A free lock has nothing to remember: finish, and the next request starts a new run.
    if (!holder && queue.length === 0) return;
    if (workflowInfo().continueAsNewSuggested && queue.length === 0) {
      await continueAsNew<typeof lockWorkflow>({ holder, holderCheckInterval: input.holderCheckInterval });
    }
  }
}
