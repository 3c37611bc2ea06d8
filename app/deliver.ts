// The only place webhooks reach Temporal: one signalWithStart per accepted delivery.
import { matchesGlob } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Logger } from './logger.ts';
import {
  PR_EVENT_SIGNAL,
  PR_WORKFLOW_TYPE,
  prWorkflowId,
  type PrEvent,
  type PrRef,
  type PrSnapshot,
  type PrWorkflowInput,
} from '../shared/contracts.ts';

export interface Delivery {
  pr: PrRef;
  /** Passed to the workflow input when this delivery starts the workflow. */
  snapshot?: PrSnapshot;
  event: PrEvent;
}

export type DeliveryOutcome = 'signalled' | 'duplicate' | 'not-allowed';

export type Deliver = (delivery: Delivery) => Promise<DeliveryOutcome>;

export interface DelivererOptions {
  client: Client;
  taskQueue: string;
  /** Globs of owner/repo (case-insensitive); empty or absent → every repository. */
  repoAllowlist?: readonly string[];
  logger: Logger;
  /** How many recent delivery ids to remember for deduplication. */
  recentDeliveries?: number;
  /** Give up on Temporal after this long, so GitHub (10 s timeout) sees a failure rather than a hang. */
  signalTimeoutMs?: number;
}

/** TERRAPIN_REPO_ALLOWLIST: globs of owner/repo, case-insensitive; an empty list allows every repository. */
export function repoAllowed(allowlist: readonly string[], fullName: string): boolean {
  return allowlist.length === 0 || allowlist.some((glob) => matchesGlob(fullName.toLowerCase(), glob.toLowerCase()));
}

export function createDeliverer(opts: DelivererOptions): Deliver {
  const delivered = new RecentIds(opts.recentDeliveries ?? 10_000);
  // Concurrent redeliveries of one id share one signal attempt.
  const inFlight = new Map<string, Promise<DeliveryOutcome>>();
  const allowlist = (opts.repoAllowlist ?? []).map((g) => g.toLowerCase());
  const signalTimeoutMs = opts.signalTimeoutMs ?? 8_000;

  async function signal({ pr, snapshot, event }: Delivery, log: Logger): Promise<DeliveryOutcome> {
    const workflowId = prWorkflowId(pr.repo.owner, pr.repo.name, pr.number);
    const input: PrWorkflowInput = snapshot ? { pr, snapshot } : { pr };
    const started = Date.now();
    await opts.client.withDeadline(started + signalTimeoutMs, () =>
      opts.client.workflow.signalWithStart(PR_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: opts.taskQueue,
        args: [input],
        signal: PR_EVENT_SIGNAL,
        signalArgs: [event],
      }),
    );
    delivered.add(event.deliveryId);
    log.info({ workflowId, ms: Date.now() - started }, 'signalled PR workflow');
    return 'signalled';
  }

  return async (delivery) => {
    if (!Number.isSafeInteger(delivery.pr.number) || delivery.pr.number < 1) {
      throw new MalformedPayload(`pull request number ${JSON.stringify(delivery.pr.number)} is not a positive integer`);
    }
    const { deliveryId } = delivery.event;
    const fullName = `${delivery.pr.repo.owner}/${delivery.pr.repo.name}`;
    const log = opts.logger.child({ deliveryId, repo: fullName, pr: delivery.pr.number, event: delivery.event.type });
    if (!repoAllowed(allowlist, fullName)) {
      log.info('repository not in TERRAPIN_REPO_ALLOWLIST; ignored');
      return 'not-allowed';
    }
    if (delivered.has(deliveryId)) {
      log.info('delivery already signalled; ignored');
      return 'duplicate';
    }
    const pending = inFlight.get(deliveryId);
    if (pending) {
      await pending;
      return 'duplicate';
    }
    const attempt = signal(delivery, log);
    inFlight.set(deliveryId, attempt);
    try {
      return await attempt;
    } catch (err) {
      log.error({ err }, 'could not signal PR workflow');
      throw err;
    } finally {
      inFlight.delete(deliveryId);
    }
  };
}

/** A webhook payload that lacks what its event must carry: answered 400, never retried into a workflow. */
export class MalformedPayload extends Error {}

/** Bounded set of recently seen ids; the oldest is forgotten first. */
export class RecentIds {
  readonly #ids = new Set<string>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  has(id: string): boolean {
    if (!this.#ids.has(id)) return false;
    // Refresh recency: a redelivered id is likely to be redelivered again.
    this.#ids.delete(id);
    this.#ids.add(id);
    return true;
  }

  add(id: string): void {
    this.#ids.delete(id);
    this.#ids.add(id);
    if (this.#ids.size > this.#capacity) this.#ids.delete(this.#ids.values().next().value!);
  }

  get size(): number {
    return this.#ids.size;
  }
}
