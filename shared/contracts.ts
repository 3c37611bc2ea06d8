// Contracts shared by the app (webhooks → signals), the PR workflow and the activities.
// Types and pure helpers only: this file is bundled into the deterministic workflow sandbox.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { TerraformBinary } from './config.ts';

/** Name of the PR workflow type and of the one signal that carries every webhook to it. */
export const PR_WORKFLOW_TYPE = 'prWorkflow';
export const PR_EVENT_SIGNAL = 'prEvent';

export interface RepoRef {
  owner: string;
  name: string;
  installationId: number;
  /** `repository.clone_url` from the webhook; http(s) URLs are authenticated with the installation token. */
  cloneUrl: string;
}

export interface PrRef {
  repo: RepoRef;
  number: number;
}

/** What the workflow knows of the pull request itself; refreshed from every pull_request event. */
export interface PrSnapshot {
  headSha: string;
  headRef: string;
  baseRef: string;
  baseSha: string;
  author: string;
  draft: boolean;
  /** Clone URL of the head repository (differs from the base repo's for forks). */
  headCloneUrl: string;
  state: 'open' | 'closed';
  /** Label names, for `when: label` rules in .terrapin.yml (refreshed with every pull_request event). */
  labels?: string[];
  /** The head is in another repository (a fork, or a deleted one): its code is not trusted by default. */
  fromFork?: boolean;
  /** `pull_request.updated_at`: webhooks can arrive out of order, and an older snapshot must not win. */
  updatedAt?: string;
}

export type CommandName = 'plan' | 'approve' | 'apply' | 'unlock' | 'cancel' | 'drift' | 'help' | 'approve-policies';
export const COMMAND_NAMES: readonly CommandName[] = ['plan', 'approve', 'apply', 'unlock', 'cancel', 'drift', 'help', 'approve-policies'];

export interface ParsedCommand {
  name: CommandName;
  project?: string;
  dir?: string;
  workspace?: string;
  /** Arguments after `--`, passed to terraform after allowlist checks (issue 3). */
  extraArgs: string[];
}

/** Result of reading the first line of a comment. */
export type CommandParse =
  | { kind: 'none' }
  | { kind: 'command'; command: ParsedCommand }
  | { kind: 'unknown'; word: string; suggestion: CommandName }
  | { kind: 'invalid'; name: CommandName; error: string };

export type CommandSource = 'comment' | 'review' | 'button';

/**
 * The key a command counts once under: its comment or review id. `X-GitHub-Delivery` is not signed, so a
 * captured signed body re-sent with a new delivery id must still be recognised. Buttons carry no such id.
 */
export function commandKey(event: { type: string; commentId?: number; reviewId?: number }): string | undefined {
  if (event.type !== 'command' && event.type !== 'bad-command') return undefined;
  if (event.commentId !== undefined) return `comment:${event.commentId}`;
  if (event.reviewId !== undefined) return `review:${event.reviewId}`;
  return undefined;
}

/** Every webhook the app forwards becomes one of these, delivered with signalWithStart. */
export type PrEvent =
  | {
      type: 'pr-updated';
      deliveryId: string;
      action: 'opened' | 'reopened' | 'ready_for_review' | 'synchronize' | 'converted_to_draft';
      actor: string;
      pr: PrSnapshot;
    }
  | { type: 'pr-closed'; deliveryId: string; actor: string; merged: boolean; mergeCommitSha?: string }
  | {
      type: 'command';
      deliveryId: string;
      source: CommandSource;
      actor: string;
      command: ParsedCommand;
      /** The comment to react to / reply under (source 'comment'). */
      commentId?: number;
      /** For approving reviews: the commit the review was made on. */
      reviewCommitSha?: string;
      /** For approving reviews: its id (a review counts once, whatever the delivery id). */
      reviewId?: number;
      /** When GitHub says the comment was created / the review submitted: an approval predates a plan it never saw. */
      createdAt?: string;
      /** For buttons: the commit of the check run the button was on. */
      checkHeadSha?: string;
    }
  | {
      type: 'bad-command';
      deliveryId: string;
      actor: string;
      commentId: number;
      createdAt?: string;
      parse: Extract<CommandParse, { kind: 'unknown' | 'invalid' }>;
    }
  /** From a deploy workflow to the merged PR's: a deploy of its merge commit waits for approval, or ended. */
  | { type: 'deploy-status'; deliveryId: string; project: string; sha: string; status: 'waiting' | 'finished'; outcome?: string }
  /** From a project lock (a LockNotice, turned into an event by the PR workflow): the lock is now this PR's, or expired. */
  | { type: 'lock'; deliveryId: string; notice: LockNotice };

export interface PrWorkflowInput {
  pr: PrRef;
  /** Present when the starting webhook carried the PR; otherwise the workflow fetches it. */
  snapshot?: PrSnapshot;
  /** Carried across continue-as-new. */
  carried?: unknown;
}

export const prWorkflowId = (owner: string, repo: string, number: number): string => `pr:${owner}/${repo}#${number}`;

/** Inverse of prWorkflowId; used to route check-run button clicks (external_id). */
export function parsePrWorkflowId(id: string): { owner: string; repo: string; number: number } | undefined {
  const m = /^pr:([^/\s]+)\/([^#\s]+)#(\d+)$/.exec(id);
  return m ? { owner: m[1]!, repo: m[2]!, number: Number(m[3]) } : undefined;
}

export const CHECK_PLAN = 'terrapin/plan';
export const CHECK_APPLY = 'terrapin/apply';
/** Per project with policy checks: `terrapin/policy: <project>`. */
export const CHECK_POLICY = 'terrapin/policy';

/** Check-run button identifiers (requested_action.identifier). */
export type CheckAction = 'approve' | 'apply' | 'replan';

/** Drift reconciliation (`drift: { reconcile: true }`): one workflow per project, approved on its drift issue. */
export const DRIFT_RECONCILE_WORKFLOW_TYPE = 'driftReconcileWorkflow';
export const RECONCILE_SIGNAL = 'reconcile';
export const driftReconcileId = (repo: { owner: string; name: string }, project: string): string =>
  `drift-reconcile:${repo.owner}/${repo.name}:${project}`;
export const DRIFT_LABEL = 'terrapin:drift';

/** The project a drift issue is about, from its exact title; undefined for other issues. */
export function driftIssueProject(issue: { title: string; labels?: Array<{ name?: string } | string> }): string | undefined {
  const labelled = (issue.labels ?? []).some((l) => (typeof l === 'string' ? l : l.name) === DRIFT_LABEL);
  const m = /^Drift detected: (\S+)$/.exec(issue.title);
  return labelled && m ? m[1] : undefined;
}

/** Deploys after merge: one queue workflow per project, reached with signalWithStart. */
export const DEPLOY_WORKFLOW_TYPE = 'deployWorkflow';
export const DEPLOY_SIGNAL = 'deploy';
export const CHECK_DEPLOY = 'terrapin/deploy';
export const deployWorkflowId = (repo: { owner: string; name: string }, project: string): string => `deploy:${repo.owner}/${repo.name}:${project}`;

/** Inverse of deployWorkflowId; routes the Approve button of a `terrapin/deploy: <project>` check. */
export function parseDeployWorkflowId(id: string): { owner: string; repo: string; project: string } | undefined {
  const m = /^deploy:([^/\s]+)\/([^:\s]+):(\S+)$/.exec(id);
  return m ? { owner: m[1]!, repo: m[2]!, project: m[3]! } : undefined;
}

/** Pushes to the default branch: one short workflow per pushed commit. */
export const PUSH_WORKFLOW_TYPE = 'pushWorkflow';
export const pushWorkflowId = (repo: { owner: string; name: string }, sha: string): string => `push:${repo.owner}/${repo.name}:${sha}`;


// ---- locks: one durable lock per project ----------------------------------------------------

export interface LockHolder {
  /** The holding PR workflow's id; answers are signalled to it. */
  workflowId: string;
  pr: number;
}

export interface LockRequest {
  /** touch: the holder is active (a plan, apply or command), for `lock.ttl`; it gets no answer. */
  kind: 'acquire' | 'release' | 'touch';
  /** Chosen by the requester; echoed in the answer so it can match it. */
  requestId: string;
  holder: LockHolder;
  /** acquire: whether a refused requester waits in line (default true; `lock: onApply` asks without waiting). */
  wait?: boolean;
  /** The repository's `lock.ttl` ("12h"; the default branch's copy), absent when none is set. */
  ttl?: string;
}

export interface LockAnswer {
  requestId: string;
  lockId: string;
  /** acquire: granted or not; release: released (false when the requester did not hold it). */
  granted: boolean;
  /** Who holds the lock after the request (undefined: nobody). */
  holder?: LockHolder;
  /** A refused acquire that waits: its place in line (1: next). Absent when it does not wait (the line is full). */
  place?: number;
}

/** From a lock to a PR workflow, unasked: it now holds the lock (it waited in line), or lost it (`lock.ttl`). */
export interface LockNotice {
  /** Unique per notice: the PR workflow handles each once. */
  id: string;
  lockId: string;
  kind: 'granted' | 'expired';
  /** granted: who held the lock before, and why it went. */
  previous?: LockHolder;
  reason?: 'released' | 'expired' | 'holder-gone';
  /** The `lock.ttl` that ran out (expired, or granted after an expiry). */
  ttl?: string;
}

/** Most PR workflows that wait in line for one lock; later ones are refused without a place. */
export const LOCK_QUEUE_LIMIT = 20;

export interface LockInput {
  /** Carried across continue-as-new. */
  holder?: LockHolder;
  /** How often a held lock checks that its holder still runs. */
  holderCheckInterval?: Duration;
  /** Carried across continue-as-new: the PR workflows waiting, first come first served. */
  waiting?: LockHolder[];
  /** Carried across continue-as-new: workflow time (ms) of the holder's last activity, and the TTL in force. */
  lastActivity?: number;
  ttl?: string;
  /** Test knob: the TTL in milliseconds, instead of what `lock.ttl` says (whose unit is at least a minute). */
  ttlOverrideMs?: number;
}

export const LOCK_WORKFLOW_TYPE = 'lockWorkflow';
export const LOCK_REQUEST_SIGNAL = 'lockRequest';
export const LOCK_ANSWER_SIGNAL = 'lockAnswer';
export const LOCK_NOTICE_SIGNAL = 'lockNotice';

export const lockRequestSignal = defineSignal<[LockRequest]>(LOCK_REQUEST_SIGNAL);
export const lockAnswerSignal = defineSignal<[LockAnswer]>(LOCK_ANSWER_SIGNAL);
export const lockNoticeSignal = defineSignal<[LockNotice]>(LOCK_NOTICE_SIGNAL);
export const lockHolderQuery = defineQuery<LockHolder | undefined>('lockHolder');
/** The PR workflows waiting for the lock, first in line first. */
export const lockQueueQuery = defineQuery<LockHolder[]>('lockQueue');
/** Workflow time (ms) of the holder's last activity, and the `lock.ttl` requests carry. */
export const lockActivityQuery = defineQuery<{ lastActivity: number; ttl?: string }>('lockActivity');

/** `lock.ttl` ("30m", "12h", "7d") in milliseconds; undefined for anything else. */
export function lockTtlMs(ttl: string | undefined): number | undefined {
  const m = /^([1-9][0-9]*)(m|h|d)$/.exec(ttl ?? '');
  return m ? Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'] : undefined;
}

export const lockWorkflowId = (owner: string, repo: string, dir: string, workspace: string): string =>
  `lock:${owner}/${repo}:${dir}:${workspace}`;

// ---- deploys after merge ---------------------------------------------------------------------

/** The plan approved on the PR, kept outside the PR's work dir (deleted at merge). */
export interface ApprovedPlan {
  showJsonFile: string;
  planTextFile: string;
  approvers: string[];
}

export interface DeployRevision {
  sha: string;
  trigger: 'merge' | 'push';
  /** Who merged or pushed. */
  actor: string;
  pr?: {
    number: number;
    author: string;
    /** The opener and whoever pushed to the PR's head; its commits' authors and committers are read when approving. */
    authors?: string[];
  };
  approved?: ApprovedPlan;
  /** Projects of the same revision this one depends on: they deploy first, and their outputs are read after. */
  upstreams: string[];
  /** Projects of the same revision waiting for this one. */
  downstreams: string[];
}

export type DeployOutcome = 'deployed' | 'unchanged' | 'failed' | 'rolled-back' | 'rollback-failed' | 'unknown' | 'skipped' | 'superseded' | 'expired';

export type DeployEvent =
  | { type: 'revision'; revision: DeployRevision }
  | { type: 'upstream'; sha: string; project: string; outcome: DeployOutcome }
  | { type: 'approve'; deliveryId: string; actor: string; sha?: string; prNumber?: number; createdAt?: string }
  /** An operator's apply or destroy (workflows/operator-run.ts) takes its turn in the queue; `holder` is told when it is its turn. */
  | { type: 'hold'; holder: string; requestId: string }
  /** ...and gives the turn back (or gives up its place in line). */
  | { type: 'release'; requestId: string };

type Approval = Extract<DeployEvent, { type: 'approve' }>;

export interface DeployState {
  queue: DeployRevision[];
  /** The revision the project was last deployed from. */
  deployed?: string;
  /** Revision shas and approval delivery ids already taken: duplicates have no effect. */
  seen: string[];
  upstreamDone: Array<{ sha: string; project: string; outcome: DeployOutcome }>;
  approvals: Approval[];
  history: Array<{ sha: string; outcome: DeployOutcome; pr?: number }>;
  /** Operator runs waiting for their turn, first come first served (absent in state carried by older runs). */
  holds?: Array<{ holder: string; requestId: string }>;
}

export interface DeployInput {
  repo: RepoRef;
  project: string;
  carried?: DeployState;
}

export interface DeployStatus {
  deployed?: string;
  queued: string[];
  current?: { sha: string; phase: 'starting' | 'waiting-upstream' | 'planning' | 'waiting-approval' | 'applying' | 'reporting' | 'held'; holder?: string };
  history: DeployState['history'];
  /** Operator runs waiting for their turn in this queue (workflow ids). */
  holds?: string[];
}

export const deploySignal = defineSignal<[DeployEvent]>(DEPLOY_SIGNAL);
/** From a deploy queue to an operator run that asked for a turn: it is its turn now. */
export const deployHoldGrantedSignal = defineSignal<[{ requestId: string; project: string }]>('deployHoldGranted');
export const deployStateQuery = defineQuery<DeployStatus>('deployState');

// ---- drift checks and reconciling ------------------------------------------------------------

export interface DriftRunInput {
  repo: RepoRef;
  project: string;
  trigger?: 'schedule' | 'manual';
  /** Who asked (`/drift`); absent for scheduled runs. */
  actor?: string;
}

export type DriftOutcome =
  | { status: 'drifted' | 'clean'; sha: string; resources: string[] }
  | { status: 'error'; sha: string; step: string }
  | { status: 'no-project'; sha: string };

export type ReconcileEvent =
  | {
      type: 'offer';
      sha: string;
      issueNumber: number;
      target: { workDir: string; projectDir: string; workspace: string; binary: TerraformBinary; label: string };
      planFile: string;
      planSha256: string;
      env?: Record<string, string>;
      /** Workflow time just before the drift issue showed this plan. */
      shownFrom?: number;
    }
  | { type: 'approve' | 'drift'; deliveryId: string; actor: string; commentId: number; issueNumber: number; createdAt?: string };

export const reconcileSignal = defineSignal<[ReconcileEvent]>(RECONCILE_SIGNAL);

export interface ReconcileInput {
  repo: RepoRef;
  project: string;
}

// ---- pushes to the default branch ------------------------------------------------------------

export interface PushInput {
  repo: RepoRef;
  /** The branch head before the push (all zeros for a new branch). */
  before: string;
  after: string;
  /** Who pushed. */
  actor: string;
}

export type PushOutcome = { queued: string[] } | { skipped: 'merged-pr' | 'config-error' | 'not-enabled'; pr?: number };


export type PlanStatus = 'ready' | 'applying' | 'applied' | 'apply-failed' | 'unknown' | 'discarded';

// ---- the PR workflow's signal, query and result ----------------------------------------------

export const prEventSignal = defineSignal<[PrEvent]>(PR_EVENT_SIGNAL);
export const prStateQuery = defineQuery<PrStatus>('prState');


export interface PrStatus {
  headSha?: string;
  plan?: {
    id: number;
    sha: string;
    status: PlanStatus;
    summary: string;
    planSha256: string;
    projects?: Array<{ name: string; status: string; planSha256?: string }>;
  };
  approvals: string[];
  job?: 'plan' | 'apply';
  queued: number;
  /**
   * Delivery ids of the latest events this run has finished handling (newest last, bounded): a test or tool
   * proves that an event changed nothing only after it shows up here.
   */
  handled: string[];
  /** After a merge: the deploys this PR follows (a waiting one takes `/approve` here). */
  deploys?: Array<{ project: string; status: string }>;
  /** The locks a refused plan still waits in line for (it runs again once the PR holds them all). */
  lockWait?: string[];
}

export interface PrOutcome {
  merged: boolean;
  /** The PR was already closed when this run started (a comment on a closed PR): it answered and ended. */
  closedBefore?: boolean;
  lastPlan?: { sha: string; status: PlanStatus };
}
