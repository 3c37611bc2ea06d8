// Local runs: the project pipeline of a PR (workflows/pipeline.ts: DAG order and parallelism, outputs into
// inputs, hooks, the plan hash check, the saga's rollback) run in this process against a local directory,
// with the activities called directly instead of through Temporal. No durability: a crash loses the run
// (terraform's own state lock is all that guards the state), and there is nobody to approve a plan.
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isCancellation } from '@temporalio/workflow';
import { comparePlans } from '../activities/plan-compare.ts';
import { createTerraformActivities } from '../activities/terraform.ts';
import { DEFAULT_TERRAFORM_ENV, selectTerraformEnv } from '../activities/terraform-env.ts';
import { resolveSandbox, type Sandbox } from '../activities/sandbox.ts';
import { runDag } from '../shared/dag.ts';
import type { CheckoutInput } from '../shared/activity-contracts.ts';
import type { RepoRef } from '../shared/contracts.ts';
import type { ResolvedProject } from '../shared/config.ts';
import type { RunInput, RunKind, RunResult } from '../shared/runs.ts';
import { applyInOrder, PlanFailed, planInOrder, runProject as runProjectOf, type PipelineContext, type StartRun } from '../workflows/pipeline.ts';
import { runProject, type RunActivities } from '../workflows/project-run.ts';
import { toProjectPlan, type ProjectPlan } from '../workflows/projects.ts';
import { inProcess, localShield } from './activities.ts';
import { chooseLocal, LocalConfigError, readLocalProjects } from './projects.ts';
import { CONFIG_FILE } from '../activities/repo-config/index.ts';
import { HISTORY_URL, openTree, WORKTREE_URL } from './tree.ts';
import { NEEDS_TEMPORAL } from './needs-temporal.ts';

export { NEEDS_TEMPORAL };

export type LocalCommand = 'plan' | 'apply' | 'drift';


export class LocalRefusal extends Error {}
/** Something this machine lacks (bubblewrap): nothing was run. */
export class LocalUnavailable extends Error {}

export interface LocalRunOptions {
  dir: string;
  command: LocalCommand;
  /** `-p`: only these projects (default: all). */
  projects?: string[];
  /** `--base`: the git ref a failed apply rolls back to (without it nothing is rolled back). */
  base?: string;
  autoApprove?: boolean;
  /** Aborted: terraform is stopped as a cancelled activity stops it, and the run ends as cancelled. */
  signal?: AbortSignal;
  onEvent?: (event: LocalEvent) => void;
  /** How terraform and hooks run; default: bubblewrap, the directory writable (refused if it does not work here). */
  sandbox?: Sandbox | Promise<Sandbox>;
  /** Run terraform and hooks unsandboxed (the user's own code on their own machine, e.g. where bubblewrap does not exist). */
  noSandbox?: boolean;
}

export type LocalEvent =
  | { type: 'start'; project: string; kind: RunKind }
  | { type: 'done'; project: string; kind: RunKind; result: RunResult; ms: number };

export type ProjectStatus =
  | 'planned'
  | 'no-changes'
  | 'failed'
  | 'skipped'
  | 'cancelled'
  | 'applied'
  | 'apply-failed'
  | 'stale'
  | 'unknown'
  | 'changed'
  | 'not-applied'
  | 'drifted'
  | 'clean';

export interface ProjectReport {
  name: string;
  dir: string;
  workspace: string;
  status: ProjectStatus;
  /** Resource changes of the project's plan (plan, apply) or of its drift check's plan. */
  changes?: { add: number; change: number; destroy: number };
  /** The upstream that failed or was skipped, for a skipped project. */
  skippedBecause?: string;
  rollback?: { status: 'rolled-back' | 'rollback-failed'; baseRef: string; baseSha?: string; logFile?: string; error?: string };
  /** terraform's output: the plan text, the apply log, or the failed step's output. */
  logFile?: string;
  error?: string;
  durationMs?: number;
}

export interface LocalSummary {
  command: LocalCommand;
  dir: string;
  ok: boolean;
  cancelled: boolean;
  durationMs: number;
  projects: ProjectReport[];
}

const LABEL = 'local';

function sandboxFor(dir: string, noSandbox: boolean): Promise<Sandbox> {
  // The user's own machine: the host network (no embedded Temporal to shield), the whole directory writable.
  return resolveSandbox({ sandbox: noSandbox ? 'none' : 'auto', paths: [{ path: dir, writable: true }], network: 'host' });
}

export async function runLocal(opts: LocalRunOptions): Promise<LocalSummary> {
  if (opts.command === 'apply' && !opts.autoApprove) throw new LocalRefusal(NEEDS_TEMPORAL.approval);
  const began = performance.now();
  const signal = opts.signal ?? new AbortController().signal;
  let all: ResolvedProject[] = [];
  const tree = await openTree(opts.dir, () => all.map((p) => p.dir));
  const found = await readLocalProjects(tree.dir);
  all = found.all;
  const { config } = found;
  const chosen = chooseLocal(all, opts.projects ?? []);
  if (chosen.length === 0) throw new LocalConfigError(`no Terraform projects in ${tree.dir}: ${CONFIG_FILE} lists none and no directory has .tf files`);
  // A rollback target that does not exist is found out now, not after something was applied.
  if (opts.base) await tree.resolve(opts.base, '--base');

  const sandbox = await (opts.sandbox ?? sandboxFor(tree.dir, opts.noSandbox === true));
  if (sandbox.kind === 'unavailable') {
    throw new LocalUnavailable(`terraform and hooks run sandboxed (bubblewrap), which does not work here: ${sandbox.reason}. Install bubblewrap, or pass --no-sandbox to run your own code unsandboxed`);
  }
  const terraform = createTerraformActivities({
    dataDir: tree.filesDir,
    passEnv: selectTerraformEnv(process.env, DEFAULT_TERRAFORM_ENV),
    sandbox,
    getInstallationToken: () => Promise.reject(new Error('a local run has no GitHub App')),
  });
  const notLocal = (what: string) => () => Promise.reject(new Error(`${what} is not available in a local run`));
  const activities = inProcess(
    {
      plan: terraform.plan,
      apply: terraform.apply,
      readOutputs: terraform.readOutputs,
      detectDrift: terraform.detectDrift,
      comparePlans,
      checkout: (input: CheckoutInput) => tree.checkout(input),
      selectProjects: notLocal('reading another revision’s .terrapin.yml'),
      runPolicyChecks: notLocal('policy checks'),
    },
    signal,
  ) as unknown as RunActivities;

  const results = new Map<string, Partial<Record<RunKind, { result: RunResult; ms: number }>>>();
  const started = new Set<string>();
  let runs = 0;
  const start: StartRun = async (input) => {
    const { name } = input.project;
    started.add(name);
    const t0 = performance.now();
    opts.onEvent?.({ type: 'start', project: name, kind: input.kind });
    const result = await runProject(input, { runId: `local:${name}:${input.kind}-${++runs}`, record: () => undefined, activities });
    const ms = Math.round(performance.now() - t0);
    results.set(name, { ...results.get(name), [input.kind]: { result, ms } });
    opts.onEvent?.({ type: 'done', project: name, kind: input.kind, result, ms });
    return result;
  };

  const repo: RepoRef = { owner: 'local', name: basename(tree.dir), installationId: 0, cloneUrl: HISTORY_URL };
  const sha = tree.head ?? '0'.repeat(40);
  const ctx: PipelineContext = {
    repo,
    prNumber: 0,
    sha,
    cloneUrl: WORKTREE_URL,
    baseSha: '',
    known: all.map((p) => ({ name: p.name, dir: p.dir, workspace: p.workspace, binary: p.terraform })),
    parallelism: config.parallelism,
    record: { trigger: 'manual' },
    recorded: false,
    nextRun: () => ++runs,
    start,
    shield: localShield,
    autoApprove: opts.command === 'apply',
  };
  const plans = chosen.map((p) => ({ ...toProjectPlan(p, LABEL), ...(opts.base ? {} : { onFailure: 'none' as const }) }));
  const reports = new Map<string, ProjectReport>(plans.map((p) => [p.name, { name: p.name, dir: p.dir, workspace: p.workspace, status: 'skipped' }]));
  const set = (name: string, fields: Partial<ProjectReport>) => Object.assign(reports.get(name)!, fields);
  let cancelled = false;

  try {
    if (opts.command === 'plan') {
      const outcomes = await planInOrder(ctx, plans, []);
      for (const p of plans) {
        const outcome = outcomes.get(p.name)!;
        if (outcome.status === 'succeeded') set(p.name, fromRun(outcome.value));
        else if (outcome.status === 'failed') set(p.name, outcome.error instanceof PlanFailed ? fromRun(outcome.error.result) : { status: 'failed', error: messageOf(outcome.error) });
      }
    } else if (opts.command === 'apply') {
      const outcome = await applyInOrder(ctx, plans, plans.map((p) => p.name), opts.base ?? '', tick());
      for (const p of plans) {
        const run = results.get(p.name)?.apply;
        if (run) set(p.name, fromRun(run.result));
        const rollback = outcome.rollbacks.get(p.name);
        if (rollback) set(p.name, { rollback: { ...rollback, ...(rollback.outputFile ? { logFile: rollback.outputFile } : {}) } });
      }
    } else {
      const byName = new Map(plans.map((p) => [p.name, p]));
      const outcomes = await runDag(
        plans.map((p) => ({ name: p.name, dependsOn: p.dependsOn.filter((d) => byName.has(d)) })),
        { parallelism: ctx.parallelism, run: (name) => start(driftInput(ctx, byName.get(name)!)) },
      );
      for (const p of plans) {
        const outcome = outcomes.get(p.name)!;
        if (outcome.status === 'succeeded') set(p.name, fromRun(outcome.value));
        else if (outcome.status === 'failed' && !isCancellation(outcome.error)) set(p.name, { status: 'failed', error: messageOf(outcome.error) });
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
  }
  cancelled = signal.aborted;

  for (const p of plans) {
    const report = reports.get(p.name)!;
    const timed = Object.values(results.get(p.name) ?? {});
    if (timed.length) report.durationMs = timed.reduce((sum, t) => sum + t.ms, 0);
    if (report.status !== 'skipped') continue;
    if (cancelled) report.status = started.has(p.name) ? 'cancelled' : opts.command === 'apply' ? 'not-applied' : 'skipped';
    else if (opts.command === 'apply' && !p.dependsOn.some((d) => failed(reports.get(d)))) report.status = 'not-applied';
    else {
      const because = p.dependsOn.find((d) => failed(reports.get(d)));
      if (because) report.skippedBecause = because;
    }
  }
  const projects = [...reports.values()];
  const ok = !cancelled && projects.every((r) => GOOD.has(r.status) && (!r.rollback || r.rollback.status === 'rolled-back'));
  return { command: opts.command, dir: tree.dir, ok, cancelled, durationMs: Math.round(performance.now() - began), projects };
}

const GOOD = new Set<ProjectStatus>(['planned', 'no-changes', 'applied', 'drifted', 'clean']);
const failed = (r: ProjectReport | undefined) => r !== undefined && !GOOD.has(r.status);

function tick(): () => number {
  let clock = 0;
  return () => ++clock;
}

function driftInput(ctx: PipelineContext, p: ProjectPlan): RunInput {
  return {
    repo: ctx.repo,
    kind: 'drift',
    record: ctx.record,
    recorded: false,
    source: { prNumber: 0, cloneUrl: ctx.cloneUrl, sha: ctx.sha },
    project: runProjectOf(p),
    known: ctx.known,
    label: `${p.label}-drift`,
  };
}

/** A run's result as the project's line of the summary. */
function fromRun(r: RunResult): Partial<ProjectReport> {
  const summary = r.plan?.summary ?? r.drift?.plan.summary;
  const changes = summary ? { changes: { add: summary.add, change: summary.change, destroy: summary.destroy } } : {};
  const logFile = r.failure?.outputFile ?? r.logFile ?? r.drift?.plan.planTextFile ?? r.plan?.planTextFile;
  const error = r.failure?.error ?? (r.changes?.length ? `plan changed since approval: ${r.changes.join('; ')}` : undefined);
  const status: ProjectStatus = r.outcome === 'rollback-failed' || r.outcome === 'rolled-back' || r.outcome === 'no-project' ? 'failed' : (r.outcome as ProjectStatus);
  return { status, ...changes, ...(logFile ? { logFile } : {}), ...(error ? { error } : {}) };
}

function messageOf(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  if (cause instanceof Error && cause.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}
