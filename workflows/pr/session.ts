// One PR workflow run's owner of state: the PR's durable state (carried across continue-as-new), the
// background job, and the ways it speaks to GitHub. Command handlers receive it; nothing else writes the state.
import { ActivityFailure, CancellationScope, isCancellation, log, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RenderRequest } from '../../shared/activity-contracts.ts';
import type { Permission } from '../../activities/github.ts';
import { CHECK_APPLY, lockWorkflowId, type CheckAction, type PrSnapshot, type PrWorkflowInput } from '../../shared/contracts.ts';
import { getPermission, minimizeComments, postComment, searchAttributesRegistered, upsertCheckRun } from '../activities.ts';
import { createLockClient, type LockClient } from '../lock-client.ts';
import { failureMessage } from '../project-run.ts';
import { pending } from '../projects.ts';
import { SEARCH_ATTRIBUTES, waitingPair } from '../../shared/records.ts';
import type { PrState } from './state.ts';

export type Conclusion = 'success' | 'failure' | 'neutral' | 'cancelled' | 'skipped';
export type JobKind = 'plan' | 'apply';

export const shortSha = (sha: string) => sha.slice(0, 7);

export class PrSession {
  readonly repo: PrWorkflowInput['pr']['repo'];
  readonly number: number;
  readonly s: PrState;
  readonly locks: LockClient;
  /** The plan or apply running in the background, if any. */
  job?: { kind: JobKind; sha: string; scope: CancellationScope };
  /** A job's failure that is a bug, not a GitHub call that kept failing: it fails the workflow task. */
  jobError?: unknown;
  /** The permission of the current event's actor, asked once per event. */
  private eventPermission?: { actor: string; permission: Permission };
  private recording?: Promise<boolean>;
  /** Whether TerrapinWaiting says `approval` (a run continued as new starts with its predecessor's attributes). */
  private markedWaiting = workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.waiting) !== undefined;

  constructor(input: PrWorkflowInput) {
    this.repo = input.pr.repo;
    this.number = input.pr.number;
    this.s = (input.carried as PrState | undefined) ?? { snapshot: input.snapshot, queue: [], seen: [], planSeq: 0, approvals: [] };
    // Answers and notices update what this PR holds in the order they came (in the signal handlers), and a
    // notice becomes an event of the PR's queue (pr/locks.ts handles it).
    this.locks = createLockClient({ workflowId: workflowInfo().workflowId, pr: this.number }, {}, {
      onAnswer: (answer, kind) => this.heldNow(answer.lockId, kind === 'acquire' && answer.granted),
      onNotice: (notice) => {
        this.heldNow(notice.lockId, notice.kind === 'granted');
        this.s.queue.push({ type: 'lock', deliveryId: `lock-${notice.id}`, notice });
      },
    });
  }

  get snapshot(): PrSnapshot {
    return this.s.snapshot!;
  }

  post(key: string, template: string, data: Record<string, unknown>, files?: Record<string, string>) {
    return postComment({ repo: this.repo, number: this.number, key, message: { template, data, files } });
  }

  reply(deliveryId: string, template: string, data: Record<string, unknown> = {}) {
    return this.post(`reply-${deliveryId}`, `replies/${template}`, data);
  }

  check(
    name: string,
    sha: string,
    status: 'queued' | 'in_progress' | 'completed',
    output: RenderRequest,
    opts: { checkRunId?: number; conclusion?: Conclusion; actions?: CheckAction[] } = {},
  ): Promise<number> {
    return upsertCheckRun({ repo: this.repo, headSha: sha, name, status, output, ...opts });
  }

  /** A new event: its actor's permission is asked afresh. */
  nextEvent(): void {
    this.eventPermission = undefined;
  }

  async permissionOf(actor: string): Promise<Permission> {
    if (this.eventPermission?.actor === actor) return this.eventPermission.permission;
    const permission = await getPermission({ repo: this.repo, login: actor });
    this.eventPermission = { actor, permission };
    return permission;
  }

  async hasWrite(actor: string): Promise<boolean> {
    const permission = await this.permissionOf(actor);
    return permission === 'write' || permission === 'admin';
  }

  /** Numbers this PR's runs (the n of their ids). */
  readonly nextRun = () => (this.s.runSeq = (this.s.runSeq ?? 0) + 1);

  /** Whether runs can carry search attributes (asked once per workflow run). */
  recorded(): Promise<boolean> {
    this.recording ??= searchAttributesRegistered();
    return this.recording;
  }

  /**
   * Whether the PR waits for an approval: it is open and its current plan of the head has changes that are
   * neither approved (to deploy after merge) nor being applied, and can still be approved (its base did not move).
   */
  waitingForApproval(): boolean {
    const { s } = this;
    const plan = s.plan;
    if (s.closed || !plan || plan.status !== 'ready' || plan.sha !== s.snapshot?.headSha) return false;
    if (plan.baseMoved || plan.awaitingMerge || this.job?.kind === 'apply') return false;
    return pending(plan.projects).length > 0;
  }

  /** Keeps TerrapinWaiting as waitingForApproval() says (when the namespace has the attributes): what the approvals gauge counts. */
  async syncWaiting(): Promise<void> {
    if (this.waitingForApproval() === this.markedWaiting) return;
    if (!(await this.recorded())) return;
    const waiting = this.waitingForApproval();
    if (waiting === this.markedWaiting) return;
    upsertSearchAttributes([waitingPair(waiting)]);
    this.markedWaiting = waiting;
  }

  startJob(kind: JobKind, sha: string, body: () => Promise<void>): void {
    // Applies run in a non-cancellable scope: nothing may interrupt terraform apply half-way.
    const scope = new CancellationScope({ cancellable: kind === 'plan' });
    this.job = { kind, sha, scope };
    scope
      .run(body)
      .catch((err) => {
        if (isCancellation(err)) return;
        // A GitHub call that kept failing is logged and the PR keeps its workflow; anything else is a
        // bug, which fails the workflow task so it retries once fixed code is deployed.
        if (err instanceof ActivityFailure) log.error('job failed', { kind, sha, error: failureMessage(err) });
        else this.jobError = err;
      })
      .finally(() => {
        this.job = undefined;
        // A plan ready for approval, or an apply done: what the PR waits for changed.
        void this.syncWaiting();
      });
  }

  /** Marks the current plan as outdated: approvals go, its comment is minimized, its apply check closes. */
  async retirePlan(reason: 'superseded' | 'discarded' | 'closed'): Promise<void> {
    const { s } = this;
    const plan = s.plan;
    s.approvals = [];
    s.policyApprovals = [];
    if (!plan || plan.status === 'applying') return;
    if (plan.status === 'ready') {
      plan.status = 'discarded';
      // A plan approved to deploy after merge keeps its green check when the PR merges.
      if (plan.applyCheckId && !(reason === 'closed' && plan.awaitingMerge)) {
        const data = { reason, merged: reason === 'closed' && s.closed?.merged, deploysAfterMerge: plan.projects.some((p) => p.apply === 'afterMerge') };
        await this.check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-retired', data }, { checkRunId: plan.applyCheckId, conclusion: reason === 'superseded' ? 'cancelled' : 'neutral' });
      }
    }
    if (reason !== 'closed' && plan.commentNodeIds.length) {
      await minimizeComments({ repo: this.repo, nodeIds: plan.commentNodeIds });
      plan.commentNodeIds = [];
    }
  }

  /** Takes a project's lock for this PR; recorded before asking, so that close releases it whatever happens. */
  async lock(project: { name: string; dir: string; workspace: string }, opts: { wait?: boolean } = {}) {
    const lockId = lockWorkflowId(this.repo.owner, this.repo.name, project.dir, project.workspace);
    this.s.locks ??= [];
    if (!this.s.locks.includes(lockId)) this.s.locks.push(lockId);
    (this.s.lockNames ??= {})[lockId] = project.name;
    return CancellationScope.nonCancellable(() => this.locks.acquire(lockId, { ...opts, ...(this.s.lockTtl ? { ttl: this.s.lockTtl } : {}) }));
  }

  /** Gives back every lock this PR holds and leaves every line it waits in. */
  async releaseLocks(): Promise<void> {
    for (const lockId of this.s.locks ?? []) await this.locks.release(lockId);
    this.s.locks = [];
    this.s.lockNames = {};
    this.s.lockWait = undefined;
  }

  /** Gives back one lock (or leaves its line). */
  async releaseLock(lockId: string): Promise<void> {
    await this.locks.release(lockId);
    this.s.locks = (this.s.locks ?? []).filter((id) => id !== lockId);
    if (this.s.lockNames) delete this.s.lockNames[lockId];
  }

  /** A plan, apply or command: with `lock.ttl` set, the locks this PR holds are kept (`except`: about to be asked anyway). */
  async touchLocks(except: readonly string[] = []): Promise<void> {
    if (!this.s.lockTtl) return;
    for (const lockId of (this.s.locksHeld ?? []).filter((id) => !except.includes(id))) await this.locks.touch(lockId, this.s.lockTtl);
  }

  lockName(lockId: string): string {
    return this.s.lockNames?.[lockId] ?? lockId.split(':').at(-2) ?? lockId;
  }

  private heldNow(lockId: string, held: boolean): void {
    const list = (this.s.locksHeld ??= []).filter((id) => id !== lockId);
    this.s.locksHeld = held ? [...list, lockId] : list;
  }
}
