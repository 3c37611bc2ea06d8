// The Schedule that runs the webhook reconciler (workflows/webhook-reconcile.ts): created or brought up to
// date by every process that starts a worker, and triggered once at start, when deliveries that failed
// while Terrapin was down are most likely. Several workers starting at once are harmless: creation is
// idempotent and overlapping runs are skipped.
import { ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';
import type { WebhookReconcileInput } from '../workflows/webhook-reconcile.ts';
import { ensureSchedule } from '../activities/schedules.ts';

/** The workflow's export name in workflows/index.ts. */
export const WEBHOOK_RECONCILE_WORKFLOW_TYPE = 'webhookReconcileWorkflow';

export const WEBHOOK_RECONCILE_SCHEDULE_ID = 'webhook-reconcile';
export const WEBHOOK_RECONCILE_WORKFLOW_ID = 'webhook-reconcile';

export interface ReconcileScheduleOptions {
  taskQueue: string;
  intervalMinutes: number;
  /** Passed to every run; tests narrow it. */
  args?: WebhookReconcileInput;
}

function current(described: ScheduleDescription, want: ReconcileScheduleOptions): boolean {
  const { action } = described;
  const every = described.spec.intervals?.[0]?.every;
  return (
    action.type === 'startWorkflow' &&
    action.workflowType === WEBHOOK_RECONCILE_WORKFLOW_TYPE &&
    action.taskQueue === want.taskQueue &&
    JSON.stringify(action.args ?? []) === JSON.stringify([want.args ?? {}]) &&
    described.spec.intervals?.length === 1 &&
    Number(every) === want.intervalMinutes * 60_000
  );
}

/** Creates (or updates) the Schedule and starts one run now; returns the schedule's handle. */
export async function startWebhookReconciler(client: Client, opts: ReconcileScheduleOptions) {
  const handle = client.schedule.getHandle(WEBHOOK_RECONCILE_SCHEDULE_ID);
  const spec = { intervals: [{ every: `${opts.intervalMinutes} minutes` as const }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: WEBHOOK_RECONCILE_WORKFLOW_TYPE,
    workflowId: WEBHOOK_RECONCILE_WORKFLOW_ID,
    taskQueue: opts.taskQueue,
    args: [opts.args ?? {}],
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP };
  await ensureSchedule(client, WEBHOOK_RECONCILE_SCHEDULE_ID, { spec, action, policies }, (described) => current(described, opts));
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  return handle;
}
