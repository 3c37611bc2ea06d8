// Contracts shared by the app (webhooks → signals), the PR workflow and the activities.
// Types and pure helpers only: this file is bundled into the deterministic workflow sandbox.

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

export type CommandName = 'plan' | 'approve' | 'apply' | 'unlock' | 'cancel' | 'drift' | 'help';
export const COMMAND_NAMES: readonly CommandName[] = ['plan', 'approve', 'apply', 'unlock', 'cancel', 'drift', 'help'];

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
  | { type: 'deploy-status'; deliveryId: string; project: string; sha: string; status: 'waiting' | 'finished'; outcome?: string };

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
