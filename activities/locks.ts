// The Temporal side of project locks: requests reach the lock workflow through signalWithStart (so the
// first request starts it, atomically), and a held lock asks whether its holder still runs.
import { activityInfo } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LOCK_REQUEST_SIGNAL, LOCK_WORKFLOW_TYPE, type LockInput, type LockRequest } from '../shared/contracts.ts';

export function createLockActivities({ client }: { client: Client }) {
  return {
    async requestLock({ lockId, request, lockInput = {} }: { lockId: string; request: LockRequest; lockInput?: LockInput }): Promise<void> {
      await client.workflow.signalWithStart(LOCK_WORKFLOW_TYPE, {
        workflowId: lockId,
        taskQueue: activityInfo().taskQueue,
        args: [lockInput],
        signal: LOCK_REQUEST_SIGNAL,
        signalArgs: [request],
      });
    },

    /** Whether the latest run of a workflow id is running (a PR workflow that continued as new still is). */
    async workflowRunning({ workflowId }: { workflowId: string }): Promise<boolean> {
      try {
        return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
  };
}
