// Operator runs: a plan, apply or destroy of one project at the default branch head, started from the
// CLI or an agent (operator/start.ts) rather than by a PR. Apply and destroy wait behind a GitHub issue
// (label terrapin:gate, titled `Apply requested: <project>` / `Destroy requested: <project>`) where an
// `/approve` by someone the default branch's rules allow lets them proceed. One workflow per project and
// kind at a time: operator:{owner}/{repo}:{project}:{kind}. Types and pure helpers only (workflow bundle).
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { RepoRef } from './contracts.ts';
import type { RunOutcome } from './runs.ts';

export const OPERATOR_WORKFLOW_TYPE = 'operatorRunWorkflow';
export const OPERATOR_SIGNAL = 'operatorGate';
export const GATE_LABEL = 'terrapin:gate';

export type OperatorKind = 'plan' | 'apply' | 'destroy';
/** What the CLI and agents may start; `drift` goes through the drift workflow (like `/drift`). */
export type OperatorRunKind = OperatorKind | 'drift';

export const operatorWorkflowId = (repo: { owner: string; name: string }, project: string, kind: OperatorKind): string =>
  `operator:${repo.owner}/${repo.name}:${project}:${kind}`;

const GATE_TITLE = /^(Apply|Destroy) requested: (\S+)$/;

/** The gate an issue is, from its label and exact title; undefined for other issues. */
export function gateIssueTarget(issue: { title: string; labels?: Array<{ name?: string } | string> }): { kind: 'apply' | 'destroy'; project: string } | undefined {
  const labelled = (issue.labels ?? []).some((l) => (typeof l === 'string' ? l : l.name) === GATE_LABEL);
  const m = GATE_TITLE.exec(issue.title);
  return labelled && m ? { kind: m[1] === 'Apply' ? 'apply' : 'destroy', project: m[2]! } : undefined;
}

export interface OperatorRunInput {
  repo: RepoRef;
  project: string;
  kind: OperatorKind;
  /** destroy: also destroy every project that depends on this one (downstreams first). */
  withDependents?: boolean;
  /** Who asked (the operator's GitHub login when known): never an approver of their own request. */
  actor?: string;
  /** Test knob: how long the gate waits for approval (default 7 days). */
  approvalWindow?: Duration;
}

/** A comment on the gate issue, from the webhook (app/events/issue-comment-created.ts). */
export interface GateComment {
  type: 'command';
  /** The command's name (only `approve` approves; others are answered). */
  command: string;
  deliveryId: string;
  actor: string;
  commentId: number;
  issueNumber: number;
  createdAt?: string;
}

export type OperatorPhase = 'planning' | 'waiting-approval' | 'waiting-queue' | 'waiting-lock' | 'applying' | 'reporting' | 'done';

export interface OperatorStatus {
  phase: OperatorPhase;
  /** The default branch commit planned. */
  sha?: string;
  /** destroy: the projects, in the order they are destroyed. */
  projects: string[];
  issue?: { number: number; url: string };
  approvers: string[];
  /** Delivery ids of the gate comments handled so far (tests wait on these, never on time). */
  handled: string[];
  /** The project runs started so far (run:… ids), the records of this operation. */
  runs: string[];
  result?: OperatorResult;
}

export type OperatorOutcome =
  | 'planned'
  | 'no-changes'
  | 'applied'
  | 'destroyed'
  | 'failed'
  | 'refused'
  | 'expired'
  | 'cancelled'
  | 'no-project'
  | 'config-error';

export interface OperatorResult {
  outcome: OperatorOutcome;
  sha?: string;
  /** refused: why (dependents without --with-dependents, a failed policy check). */
  reason?: string;
  dependents?: string[];
  issue?: { number: number; url: string };
  approvers?: string[];
  /** Per project, in the order run: its run id and outcome. */
  projects: Array<{ project: string; runId?: string; outcome: RunOutcome | 'skipped'; summaryLine?: string }>;
}

export const operatorSignal = defineSignal<[GateComment]>(OPERATOR_SIGNAL);
export const operatorStatusQuery = defineQuery<OperatorStatus>('operatorStatus');
