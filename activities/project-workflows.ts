// A project's own long-lived workflow (its deploy queue, its drift reconcile) is reached with
// signalWithStart: the first signal starts it, on the task queue of the worker that sends it.
import { activityInfo } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { RepoRef } from '../shared/contracts.ts';

export interface ProjectWorkflow {
  type: string;
  workflowId: string;
  signal: string;
}

export async function signalProjectWorkflow(client: Client, to: ProjectWorkflow, repo: RepoRef, project: string, event: unknown): Promise<void> {
  await client.workflow.signalWithStart(to.type, {
    workflowId: to.workflowId,
    taskQueue: activityInfo().taskQueue,
    args: [{ repo, project }],
    signal: to.signal,
    signalArgs: [event],
  });
}
