// The project pipeline of a PR: its projects planned in dependency order, approved ones applied in
// dependency order (downstreams re-planned when an upstream applied since their plan), and a failed apply
// compensated by rolling back the projects of the run, newest first (saga). Each step is one run
// (project-run.ts); this module only schedules runs and says what came of them.
import { isCancellation } from '@temporalio/workflow';
import { runDag, type NodeOutcome } from '../shared/dag.ts';
import { runCounts, type ProjectLocation, type RunInput, type RunProject, type RunRecordInput, type RunResult } from '../shared/runs.ts';
import type { RepoRef } from '../shared/contracts.ts';
import { startRun } from './project-run.ts';
import { upstreamAppliedSincePlan, type ProjectPlan } from './projects.ts';
import { Saga, type Shield } from './saga.ts';

/** Runs one project operation and waits for its result; `idSha` names a run whose commit is known only once it checks out. */
export type StartRun = (input: RunInput, idSha?: string) => Promise<RunResult>;

/** What every run of one plan or apply shares. */
export interface PipelineContext {
  repo: RepoRef;
  prNumber: number;
  /** The commit planned and applied, and where it is fetched from (the head repository). */
  sha: string;
  cloneUrl: string;
  baseSha: string;
  /** The base commit the head is merged into before each plan and apply (a PR's: what merging it makes). */
  mergeInto?: string;
  known: ProjectLocation[];
  parallelism: number;
  record: RunRecordInput;
  recorded: boolean;
  nextRun: () => number;
  /**
   * How a run is started. Default: a child workflow (project-run.ts); the local executor (local/) runs the
   * same steps in-process, with its own shield for the saga's compensations.
   */
  start?: StartRun;
  shield?: Shield;
  /**
   * Local runs with `--auto-approve`: a project without a plan, or whose upstream applied since its plan, is
   * planned in its apply run and that plan applied (never set by workflows: there a person approves plans).
   */
  autoApprove?: boolean;
}

const starter = (ctx: PipelineContext): StartRun => ctx.start ?? ((input, idSha) => startRun(input, ctx.nextRun, idSha));

export const runProject = (p: ProjectPlan): RunProject => ({
  name: p.name,
  dir: p.dir,
  workspace: p.workspace,
  binary: p.binary,
  env: p.env,
  hooks: p.hooks,
  inputs: p.inputs,
  ...(p.policies?.length ? { policies: p.policies, ...(p.policiesAt ? { policiesAt: p.policiesAt } : {}) } : {}),
});

function runInput(ctx: PipelineContext, p: ProjectPlan, kind: RunInput['kind'], label: string): RunInput {
  return {
    repo: ctx.repo,
    kind,
    record: ctx.record,
    recorded: ctx.recorded,
    source: { prNumber: ctx.prNumber, cloneUrl: ctx.cloneUrl, sha: ctx.sha, ...(ctx.mergeInto ? { mergeInto: { sha: ctx.mergeInto } } : {}) },
    project: runProject(p),
    known: ctx.known,
    label,
    baseSha: ctx.baseSha,
  };
}

/** Plans the projects in dependency order; a project whose upstream failed is skipped. */
export async function planInOrder(ctx: PipelineContext, projects: ProjectPlan[], extraArgs: string[]): Promise<Map<string, NodeOutcome<RunResult>>> {
  const names = new Set(projects.map((p) => p.name));
  const start = starter(ctx);
  const outcomes = await runDag(
    projects.map((p) => ({ name: p.name, dependsOn: p.dependsOn.filter((d) => names.has(d)) })),
    {
      parallelism: ctx.parallelism,
      run: async (name) => {
        const p = projects.find((x) => x.name === name)!;
        const result = await start({ ...runInput(ctx, p, 'plan', p.label), extraArgs });
        // A failed plan fails the node: its downstreams are skipped.
        if (result.outcome === 'failed' || result.outcome === 'conflict') throw new PlanFailed(result);
        return result;
      },
    },
  );
  for (const outcome of outcomes.values()) {
    if (outcome.status === 'failed' && isCancellation(outcome.error)) throw outcome.error;
  }
  return outcomes;
}

/** A plan run that ended in failure, carried through the DAG as the failing node's error. */
export class PlanFailed extends Error {
  readonly result: RunResult;
  constructor(result: RunResult) {
    super(`plan of ${result.project} failed`);
    this.result = result;
  }
}

export interface Rollback {
  status: 'rolled-back' | 'rollback-failed';
  baseRef: string;
  baseSha?: string;
  outputFile?: string;
  error?: string;
}

export type ApplyFailure =
  | { kind: 'failed'; outputFile?: string }
  | { kind: 'stale' }
  | { kind: 'unknown'; error: string; afterRestartPlanTextFile?: string }
  | { kind: 'changed'; changes: string[]; diffFile?: string; fresh: NonNullable<RunResult['plan']>; label: string };

export interface ApplyOutcome {
  /** Outputs after this operation's apply, by project. */
  applied: Map<string, string>;
  /** Apply logs by project. */
  logs: Map<string, string>;
  failures: Map<string, ApplyFailure>;
  rollbacks: Map<string, Rollback>;
  /** Projects whose apply was interrupted by a worker's death and found complete by a plan afterwards. */
  verifiedAfterRestart?: Set<string>;
}

/**
 * Applies the named projects in dependency order, stopping at the first failure; a known failure rolls the
 * run's applied projects back to the base branch, newest first. `tick` is the plan's clock: each project's
 * plannedAt / appliedAt are set on it as they happen.
 */
export async function applyInOrder(ctx: PipelineContext, projects: ProjectPlan[], names: string[], baseRef: string, tick: () => number): Promise<ApplyOutcome> {
  const chosen = projects.filter((p) => names.includes(p.name));
  const out: ApplyOutcome = { applied: new Map(), logs: new Map(), failures: new Map(), rollbacks: new Map() };
  const before = new Map<string, string>(); // outputs before this run, for rolling downstreams back
  const saga = new Saga<Rollback>(ctx.shield);
  const start = starter(ctx);
  // One base commit for every rollback of the run: the base branch head the first one found.
  let baseSha: string | undefined;

  const rollback = async (p: ProjectPlan): Promise<Rollback> => {
    const input: RunInput = {
      ...runInput(ctx, p, 'rollback', `${p.label}-rb`),
      source: { prNumber: ctx.prNumber, cloneUrl: ctx.repo.cloneUrl, ...(baseSha ? { sha: baseSha } : { branch: baseRef }) },
      upstreamOutputs: Object.fromEntries(before),
    };
    const r = await start(input, baseSha ?? ctx.sha);
    if (r.sha) baseSha ??= r.sha;
    return { status: r.outcome === 'rolled-back' ? 'rolled-back' : 'rollback-failed', baseRef, ...(r.sha ? { baseSha: r.sha } : {}), outputFile: r.logFile, error: r.failure?.error };
  };

  const set = new Set(names);
  await runDag(
    chosen.map((p) => ({ name: p.name, dependsOn: p.dependsOn.filter((d) => set.has(d)) })),
    {
      parallelism: ctx.parallelism,
      stopOnFailure: true,
      run: async (name) => {
        const p = projects.find((x) => x.name === name)!;
        const replan = upstreamAppliedSincePlan(p, projects);
        const label = replan ? `${p.label}-a` : p.label;
        const planFirst = ctx.autoApprove === true && (replan || !p.planFile);
        const r = await start(
          {
            ...runInput(ctx, p, 'apply', label),
            upstreamOutputs: Object.fromEntries(out.applied),
            ...(planFirst
              ? { planFirst }
              : {
                  plan: { planFile: p.planFile!, planSha256: p.planSha256!, ...(p.summary ? { counts: runCounts(p.summary) } : {}) },
                  ...(replan ? { replanAgainst: { showJsonFile: p.showJsonFile!, planTextFile: p.planTextFile! } } : {}),
                }),
            keepOutputsBefore: chosen.some((d) => d.dependsOn.includes(name)),
          },
        );
        // Compensated whenever terraform apply ran, whatever it says: a failed apply may have changed things.
        if (p.onFailure === 'rollback' && applyRan(r)) saga.add(name, () => rollback(p));
        if (r.outputsBeforeFile) before.set(name, r.outputsBeforeFile);
        if ((replan || planFirst) && r.plan && r.outcome !== 'changed') p.plannedAt = tick();
        if (r.logFile) out.logs.set(name, r.logFile);
        if (r.outcome === 'applied') {
          out.applied.set(name, r.outputsFile!);
          if (r.verifiedAfterRestart) (out.verifiedAfterRestart ??= new Set()).add(name);
          p.appliedAt = tick();
          return;
        }
        out.failures.set(name, applyFailure(r, label));
        throw new Error(`apply of ${name}: ${r.outcome}`);
      },
    },
  );

  const kinds = [...out.failures.values()].map((f) => f.kind);
  // Compensate only a known failure: with an unknown outcome anywhere, a person looks first.
  if (kinds.includes('failed') && !kinds.includes('unknown')) {
    for (const r of await saga.compensate()) out.rollbacks.set(r.step, r.result ?? { status: 'rollback-failed', baseRef, error: r.error });
  }
  return out;
}

const applyRan = (r: RunResult) =>
  r.outcome === 'applied' || r.outcome === 'unknown' || r.outcome === 'stale' || (r.outcome === 'apply-failed' && r.failure?.step === 'apply');

function applyFailure(r: RunResult, label: string): ApplyFailure {
  switch (r.outcome) {
    case 'stale':
      return { kind: 'stale' };
    case 'unknown':
      return { kind: 'unknown', error: r.failure?.error ?? 'unknown', ...(r.afterRestartPlanTextFile ? { afterRestartPlanTextFile: r.afterRestartPlanTextFile } : {}) };
    case 'changed':
      return { kind: 'changed', changes: r.changes ?? [], diffFile: r.diffFile, fresh: r.plan!, label };
    default:
      return { kind: 'failed', outputFile: r.failure?.outputFile ?? r.logFile };
  }
}
