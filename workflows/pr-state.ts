// The state a PR workflow keeps (and carries across continue-as-new).
import type { OnFailure, PlanSummary, TerraformBinary } from '../shared/activity-contracts.ts';
import type { ApplyRequirement, CommandPermissions } from '../activities/repo-config/types.ts';
import type { ProjectPlan } from './projects.ts';
import { type PrEvent, type PrSnapshot, type PlanStatus, commandKey } from '../shared/contracts.ts';


export interface PlanRecord {
  id: number;
  sha: string;
  workDir: string;
  planFile: string;
  planSha256: string;
  summary: PlanSummary;
  onFailure: OnFailure;
  commentNodeIds: string[];
  applyCheckId?: number;
  status: PlanStatus;
  /** From .terrapin.yml at plan time (`when` rules applied); absent: one approval. */
  requirements?: ApplyRequirement[];
  /**
   * Plans made by the project model (runs since patch 'multi-project'): every project of the plan run,
   * its own files, hash and status. Absent on older runs, whose single root project is the fields above.
   */
  projects?: ProjectPlan[];
  /** Every project of the repository at plan time: where upstreams named by `inputs` live. */
  known?: KnownProject[];
  parallelism?: number;
  /** A logical clock for the projects' plannedAt / appliedAt. */
  clock?: number;
  /** Every project is approved to deploy after merge: the apply check already passed. */
  awaitingMerge?: boolean;
  /** Workflow time (ms) once the plan was reported: approvals written before it never saw it. */
  postedAt?: number;
}

export interface DeployTracking {
  project: string;
  sha: string;
  status: 'queued' | 'waiting' | 'finished';
}

export interface KnownProject {
  name: string;
  dir: string;
  workspace: string;
  binary: TerraformBinary;
}

export interface Approval {
  actor: string;
  /** The project approved (project-model plans); absent on older runs. */
  project?: string;
  planId: number;
  sha: string;
  planSha256: string;
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
  /** A plan to run as soon as no job is running. */
  wantPlan?: string;
  /** What that plan covers when a command narrowed it (`/plan -p`, `-d`, `-- args`). */
  wantPlanScope?: { project?: string; dir?: string; workspace?: string; extraArgs: string[] };
  closed?: { merged: boolean; mergeCommitSha?: string; actor?: string };
  /** After a merge: the deploys of the merge commit this PR's workflow follows (absent before deploys existed). */
  deploys?: DeployTracking[];
  /** `permissions` of the base branch's .terrapin.yml, for the base commit they were read at. */
  permissions?: { baseSha: string; rules: CommandPermissions };
  /** The last time the PR was told its base branch is not allowed (one reply per base branch and push). */
  baseRefusal?: { baseRef: string; sha: string };
  /** Project locks this PR asked for (released on close and /unlock; releasing one not held is harmless). */
  locks?: string[];
  /** Comment and review ids already handled (`commandKey`): a command counts once, whatever its delivery id. */
  commandKeys?: string[];
  /** Who pushed to the head (senders of opened / reopened / synchronize): authors of the change, never its approvers. */
  pushers?: string[];
  /** Logins without the permission to run any command that were answered once on this PR; later, silence. */
  outsidersAnswered?: string[];
}
