// The state a PR workflow keeps (and carries across continue-as-new).
import type { PlanSummary } from '../../shared/activity-contracts.ts';
import type { ProjectLocation } from '../../shared/runs.ts';
import type { ProjectPlan } from '../projects.ts';
import type { PlanStatus, PrEvent, PrSnapshot } from '../../shared/contracts.ts';

export interface PlanRecord {
  id: number;
  sha: string;
  /** The base branch commit the head was merged into: the plan shows what merging onto it makes. */
  baseSha?: string;
  /** The base moved since, touching these projects: nothing is approved or applied from this plan. */
  baseMoved?: { sha: string; names: string[] };
  /** The plan run's totals (for one project: its own summary). */
  summary: PlanSummary;
  commentNodeIds: string[];
  applyCheckId?: number;
  status: PlanStatus;
  /** Every project of the plan run: its own files, hash and status. */
  projects: ProjectPlan[];
  /** Every project of the repository at plan time: where upstreams named by `inputs` live. */
  known: KnownProject[];
  parallelism: number;
  /** A logical clock for the projects' plannedAt / appliedAt. */
  clock?: number;
  /** Every project is approved to deploy after merge: the apply check already passed. */
  awaitingMerge?: boolean;
  /** Workflow time (ms) just before the plan was shown: approvals written before it never saw it. */
  postedAt?: number;
}

export interface DeployTracking {
  project: string;
  sha: string;
  status: 'queued' | 'waiting' | 'finished';
}

export type KnownProject = ProjectLocation;

export interface Approval {
  actor: string;
  project: string;
  planId: number;
  sha: string;
  planSha256: string;
  /** The base commit the approved plan was merged into. */
  baseSha?: string;
}

export interface LockWait {
  /** What the refused plan covered (a `/plan -p` stays narrowed) and who asked for it. */
  scope?: { project?: string; dir?: string; workspace?: string; extraArgs: string[] };
  by?: string;
  /** The locks it waits for. */
  lockIds: string[];
}

export interface PrState {
  snapshot?: PrSnapshot;
  queue: PrEvent[];
  /** Recent delivery ids: GitHub redeliveries and duplicate signals have one effect. */
  seen: string[];
  /** Delivery ids whose handling finished, newest last (bounded like `seen`). */
  handled?: string[];
  planSeq: number;
  plan?: PlanRecord;
  approvals: Approval[];
  /** `/approve-policies` by policy owners: pinned to a plan and its hash like approvals (absent: none yet). */
  policyApprovals?: Approval[];
  /** A plan to run as soon as no job is running. */
  wantPlan?: string;
  /** Who asked for that plan (the pusher or the commenter), for its runs' record. */
  wantPlanBy?: string;
  /** What that plan covers when a command narrowed it (`/plan -p`, `-d`, `-- args`). */
  wantPlanScope?: { project?: string; dir?: string; workspace?: string; extraArgs: string[] };
  closed?: { merged: boolean; mergeCommitSha?: string; actor?: string };
  /** After a merge: the deploys of the merge commit this PR's workflow follows. */
  deploys?: DeployTracking[];
  /** Numbers this PR's project runs (the n of their ids). */
  runSeq?: number;
  /** The last time the PR was told its base branch is not allowed (one reply per base branch and push). */
  baseRefusal?: { baseRef: string; sha: string };
  /** Push workflows waiting for this PR's next plan (its base moved): told when it is done. */
  replanWaiters?: Array<{ replyTo: string; baseSha: string }>;
  /** Project locks this PR asked for (released on close and /unlock; releasing one not held is harmless). */
  locks?: string[];
  /** The project name of each lock asked for, for comments. */
  lockNames?: Record<string, string>;
  /** The locks this PR holds, as the lock's answers and notices said, in the order they came. */
  locksHeld?: string[];
  /** The default branch's `lock.ttl` as the last plan read it; sent with every lock request. */
  lockTtl?: string;
  /** A plan refused for locks held by other PRs: it runs again once this PR holds all of them (pr/locks.ts). */
  lockWait?: LockWait;
  /** Comment and review ids already handled (`commandKey`): a command counts once, whatever its delivery id. */
  commandKeys?: string[];
  /** Who pushed to the head (senders of opened / reopened / synchronize): authors of the change, never its approvers. */
  pushers?: string[];
  /** Logins without the permission to run any command that were answered once on this PR; later, silence. */
  outsidersAnswered?: string[];
}
