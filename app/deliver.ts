// The only place webhooks reach Temporal. Every accepted delivery — a PR event, a drift-issue command, a
// deploy approval, a push — passes the same gate: the repository allowlist, deduplication by delivery id
// (recent ids, and concurrent redeliveries sharing one attempt) and a deadline, and a failure is thrown so
// that the endpoint answers 503 and GitHub may redeliver.
import { matchesGlob } from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from './logger.ts';
import { signalsSent } from './metrics.ts';
import {
  DEPLOY_SIGNAL,
  DEPLOY_WORKFLOW_TYPE,
  DRIFT_RECONCILE_WORKFLOW_TYPE,
  PR_EVENT_SIGNAL,
  PR_WORKFLOW_TYPE,
  PUSH_WORKFLOW_TYPE,
  RECONCILE_SIGNAL,
  deployWorkflowId,
  driftReconcileId,
  prWorkflowId,
  pushWorkflowId,
  type DeployEvent,
  type DeployInput,
  type PrEvent,
  type PrRef,
  type PrSnapshot,
  type PrWorkflowInput,
  type PushInput,
  type ReconcileEvent,
  type ReconcileInput,
  type RepoRef,
} from '../shared/contracts.ts';
import { OPERATOR_SIGNAL, operatorWorkflowId, type GateComment } from '../shared/operator.ts';

export interface Delivery {
  pr: PrRef;
  /** Passed to the workflow input when this delivery starts the workflow. */
  snapshot?: PrSnapshot;
  event: PrEvent;
}

/** `/approve` (apply the fix-plan) or `/drift` (check again) on a project's drift issue. */
export type ReconcileCommand = Extract<ReconcileEvent, { type: 'approve' | 'drift' }>;
/** The Approve button of a `terrapin/deploy: <project>` check. */
export type DeployApproval = Extract<DeployEvent, { type: 'approve' }>;

/**
 * 'started': a push workflow was started; 'duplicate': this delivery (or, for a push, this commit) was handled
 * already; 'not-running': a gate issue whose request is over (nothing is started for it).
 */
export type DeliveryOutcome = 'signalled' | 'started' | 'duplicate' | 'not-allowed' | 'not-running';

export interface Deliverer {
  /** A PR event to the PR's workflow, started (with the snapshot, if any) when it is not running. */
  pr(delivery: Delivery): Promise<DeliveryOutcome>;
  /** A drift-issue command to the project's reconcile workflow, started if needed. */
  reconcile(repo: RepoRef, project: string, event: ReconcileCommand): Promise<DeliveryOutcome>;
  /** A deploy approval to the project's deploy queue, started if needed. */
  deploy(repo: RepoRef, project: string, event: DeployApproval): Promise<DeliveryOutcome>;
  /** A comment on an operator's gate issue to the request waiting behind it; never starts one. */
  gate(repo: RepoRef, target: { kind: 'apply' | 'destroy'; project: string }, event: GateComment): Promise<DeliveryOutcome>;
  /** Starts the push's workflow; a push whose workflow exists already (another delivery of it) is a duplicate. */
  push(deliveryId: string, input: PushInput): Promise<DeliveryOutcome>;
}

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

/** What one delivery asks of Temporal, after the gate. */
interface Send {
  /** Which kind of workflow the delivery is for (a metrics label). */
  target: 'pr' | 'reconcile' | 'deploy' | 'gate' | 'push';
  deliveryId: string;
  repo: RepoRef;
  /** Log fields naming the target (PR number, project, commit). */
  context: Record<string, unknown>;
  /** Runs under the delivery's deadline. */
  call(): Promise<DeliveryOutcome>;
}

export function createDeliverer(opts: DelivererOptions): Deliverer {
  const delivered = new RecentIds(opts.recentDeliveries ?? 10_000);
  // Concurrent redeliveries of one id share one attempt.
  const inFlight = new Map<string, Promise<DeliveryOutcome>>();
  const allowlist = (opts.repoAllowlist ?? []).map((g) => g.toLowerCase());
  const signalTimeoutMs = opts.signalTimeoutMs ?? 8_000;
  const { client, taskQueue } = opts;

  async function attempt(send: Send, log: Logger): Promise<DeliveryOutcome> {
    const started = Date.now();
    const outcome = await client.withDeadline(started + signalTimeoutMs, send.call);
    delivered.add(send.deliveryId);
    log.info({ outcome, ms: Date.now() - started }, 'delivered to Temporal');
    return outcome;
  }

  async function gate(send: Send): Promise<DeliveryOutcome> {
    try {
      const outcome = await gateOnce(send);
      signalsSent.inc({ target: send.target, outcome });
      return outcome;
    } catch (err) {
      signalsSent.inc({ target: send.target, outcome: 'error' });
      throw err;
    }
  }

  async function gateOnce(send: Send): Promise<DeliveryOutcome> {
    const { deliveryId } = send;
    const fullName = `${send.repo.owner}/${send.repo.name}`;
    const log = opts.logger.child({ deliveryId, repo: fullName, ...send.context });
    if (!repoAllowed(allowlist, fullName)) {
      log.info('repository not in TERRAPIN_REPO_ALLOWLIST; ignored');
      return 'not-allowed';
    }
    if (delivered.has(deliveryId)) {
      log.info('delivery already handled; ignored');
      return 'duplicate';
    }
    const pending = inFlight.get(deliveryId);
    if (pending) {
      await pending;
      return 'duplicate';
    }
    const running = attempt(send, log);
    inFlight.set(deliveryId, running);
    try {
      return await running;
    } catch (err) {
      log.error({ err }, 'could not deliver to Temporal');
      throw err;
    } finally {
      inFlight.delete(deliveryId);
    }
  }

  /** A project's own workflow (drift reconcile, deploy queue), started if needed, gets the event. */
  const signalProject = (type: string, workflowId: string, signal: string, repo: RepoRef, project: string, event: ReconcileCommand | DeployApproval) =>
    gate({
      target: type === DEPLOY_WORKFLOW_TYPE ? 'deploy' : 'reconcile',
      deliveryId: event.deliveryId,
      repo,
      context: { workflowId, project, event: event.type },
      call: async () => {
        const input: ReconcileInput & DeployInput = { repo, project };
        await client.workflow.signalWithStart(type, { workflowId, taskQueue, args: [input], signal, signalArgs: [event] });
        return 'signalled';
      },
    });

  return {
    async pr({ pr, snapshot, event }) {
      if (!Number.isSafeInteger(pr.number) || pr.number < 1) {
        throw new MalformedPayload(`pull request number ${JSON.stringify(pr.number)} is not a positive integer`);
      }
      const workflowId = prWorkflowId(pr.repo.owner, pr.repo.name, pr.number);
      const input: PrWorkflowInput = snapshot ? { pr, snapshot } : { pr };
      return gate({
        target: 'pr',
        deliveryId: event.deliveryId,
        repo: pr.repo,
        context: { workflowId, pr: pr.number, event: event.type },
        call: async () => {
          await client.workflow.signalWithStart(PR_WORKFLOW_TYPE, { workflowId, taskQueue, args: [input], signal: PR_EVENT_SIGNAL, signalArgs: [event] });
          return 'signalled';
        },
      });
    },
    reconcile: (repo, project, event) => signalProject(DRIFT_RECONCILE_WORKFLOW_TYPE, driftReconcileId(repo, project), RECONCILE_SIGNAL, repo, project, event),
    deploy: (repo, project, event) => signalProject(DEPLOY_WORKFLOW_TYPE, deployWorkflowId(repo, project), DEPLOY_SIGNAL, repo, project, event),
    gate(repo, target, event) {
      const workflowId = operatorWorkflowId(repo, target.project, target.kind);
      return gate({
        target: 'gate',
        deliveryId: event.deliveryId,
        repo,
        context: { workflowId, project: target.project, event: `gate-${event.command}` },
        call: async () => {
          try {
            await client.workflow.getHandle(workflowId).signal(OPERATOR_SIGNAL, event);
            return 'signalled';
          } catch (err) {
            // The request ended (applied, refused, expired): a late comment has nobody to answer it.
            if (err instanceof WorkflowNotFoundError) return 'not-running';
            throw err;
          }
        },
      });
    },
    async push(deliveryId, input) {
      const workflowId = pushWorkflowId(input.repo, input.after);
      return gate({
        target: 'push',
        deliveryId,
        repo: input.repo,
        context: { workflowId, sha: input.after, event: 'push' },
        call: async () => {
          try {
            await client.workflow.start(PUSH_WORKFLOW_TYPE, { workflowId, taskQueue, args: [input] });
            return 'started';
          } catch (err) {
            // The push was started already: by a delivery this instance no longer remembers, or another instance.
            if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate';
            throw err;
          }
        },
      });
    },
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
