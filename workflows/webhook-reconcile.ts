// The webhook reconciler, started by a Temporal Schedule every few minutes and once at start (see
// app/webhook-reconcile-schedule.ts). It asks GitHub to send again the webhooks that failed (the server
// answered 503 while Temporal was down), each at most once, then sweeps open PRs for what no log shows.
// "At most once" is remembered across runs in each run's result: the next run reads the newest completed
// run's result (and the one a Schedule may hand it, workflowInfo().lastResult). GitHub's log is the second
// guard: a webhook with any redelivery attempt is never asked for again (activities/deliveries.ts).
import { ActivityFailure, log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { SweepResult } from '../activities/deliveries.ts';

export interface WebhookReconcileInput {
  /** How far back the delivery log is read (GitHub keeps three days). */
  windowMinutes?: number;
  /** Sweep open PRs after the redeliveries (default true). */
  sweep?: boolean;
}

export interface RememberedRedelivery {
  guid: string;
  deliveredAt: string;
}

export interface WebhookReconcileResult {
  /** Webhooks (guids) this run asked GitHub to send again. */
  requested: string[];
  /** Every webhook asked for within the window, this run's and earlier runs': never asked for twice. */
  remembered: RememberedRedelivery[];
  sweep?: SweepResult;
}

export const DEFAULT_WINDOW_MINUTES = 6 * 60;

const { lastReconcileResult, listFailedDeliveries, sweepOpenPullRequests } = proxyActivities<Pick<Activities, 'lastReconcileResult' | 'listFailedDeliveries' | 'sweepOpenPullRequests'>>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 3, initialInterval: '5 seconds' },
});

// Never retried: a request whose answer was lost may have been granted, and a second one would deliver twice.
const { redeliverWebhook } = proxyActivities<Pick<Activities, 'redeliverWebhook'>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 1 },
});

export async function webhookReconcileWorkflow(input: WebhookReconcileInput = {}): Promise<WebhookReconcileResult> {
  const since = Date.now() - (input.windowMinutes ?? DEFAULT_WINDOW_MINUTES) * 60_000;
  const previous = [workflowInfo().lastResult, await lastReconcileResult({ workflowType: workflowInfo().workflowType })] as Array<WebhookReconcileResult | undefined>;
  // Forgotten once out of the window: the log is not read that far back again.
  const remembered = new Map(previous.flatMap((last) => last?.remembered ?? []).filter((r) => Date.parse(r.deliveredAt) >= since).map((r) => [r.guid, r]));
  const requested: string[] = [];

  for (const candidate of await listFailedDeliveries({ since: new Date(since).toISOString() })) {
    if (remembered.has(candidate.guid)) continue;
    // Remembered before asking: whatever the answer, it is not asked for again.
    remembered.set(candidate.guid, { guid: candidate.guid, deliveredAt: candidate.deliveredAt });
    requested.push(candidate.guid);
    try {
      await redeliverWebhook({ id: candidate.id });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.warn('redelivery request failed; not asked again', { guid: candidate.guid, event: candidate.event, error: err.cause?.message ?? err.message });
    }
  }

  let sweep: SweepResult | undefined;
  if (input.sweep !== false) {
    try {
      sweep = await sweepOpenPullRequests({});
    } catch (err) {
      // The redeliveries above stand; the next run sweeps again.
      if (!(err instanceof ActivityFailure)) throw err;
      log.warn('open-PR sweep failed', { error: err.cause?.message ?? err.message });
    }
  }
  return { requested, remembered: [...remembered.values()], ...(sweep ? { sweep } : {}) };
}
