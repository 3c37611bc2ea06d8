// One run: one operation of one project at one revision (id run:{owner}/{repo}:{project}:{kind}:{sha7}-{n}).
// It checks the revision out, feeds the upstreams' outputs in, runs the hooks and terraform (the apply
// checks the plan's hash), and returns a small result: files stay on disk, paths travel. Its search
// attributes make it the record of what happened to the project, whatever started it.
// Every caller (PR, deploy, drift, reconcile) starts runs through startRun and decides what the result means.
import {
  ActivityFailure,
  ApplicationFailure,
  executeChild,
  isCancellation,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { OutputInput, PlanResult, ProjectTarget } from '../shared/activity-contracts.ts';
import { searchAttributePairs, type RunRecord } from '../shared/records.ts';
import { PROJECT_RUN_WORKFLOW_TYPE, RUN_LOG_TAIL_MEMO, runCounts, runLogFile, runWorkflowId, type RunInput, type RunProject, type RunResult } from '../shared/runs.ts';
import type { Activities } from '../activities/index.ts';
import * as proxies from './activities.ts';

/** The activities a run calls: proxies in the workflow, the functions themselves in a local run (local/). */
export type RunActivities = Pick<Activities, 'apply' | 'checkout' | 'comparePlans' | 'detectDrift' | 'plan' | 'readOutputs' | 'runPolicyChecks' | 'selectProjects'> &
  // Absent in a local run: its process is the apply's, so nothing outlives it to resolve.
  Partial<Pick<Activities, 'resolveInterruptedApply'>>;

/** What runs a run's steps: its id, where its record goes, and its activities. */
export interface RunDeps {
  runId: string;
  record(r: RunRecord): void;
  /** Called with the result before its outcome is recorded (a workflow keeps the log's end in its memo). */
  keepLog?(result: RunResult): Promise<void>;
  activities: RunActivities;
}

const workflowActivities: RunActivities = {
  apply: proxies.apply,
  checkout: proxies.checkout,
  comparePlans: proxies.comparePlans,
  detectDrift: proxies.detectDrift,
  plan: proxies.plan,
  readOutputs: proxies.readOutputs,
  runPolicyChecks: proxies.runPolicyChecks,
  selectProjects: proxies.selectProjects,
  resolveInterruptedApply: proxies.resolveInterruptedApply,
};

export function projectRun(input: RunInput): Promise<RunResult> {
  const record = (r: RunRecord) => {
    if (input.recorded) upsertSearchAttributes(searchAttributePairs(r));
  };
  return runProject(input, { runId: workflowInfo().workflowId, record, keepLog: keepLogTail, activities: workflowActivities });
}

/** The log's end, for `terrapin logs` on machines without the worker's disk. */
async function keepLogTail(result: RunResult): Promise<void> {
  const logFile = runLogFile(result);
  if (!logFile) return;
  const { tail, truncated } = await proxies.readLogTail({ file: logFile });
  if (tail) upsertMemo({ [RUN_LOG_TAIL_MEMO]: { file: logFile, text: tail, truncated } });
}

/** The steps of one run, wherever they run (a workflow, or in-process for a local run). */
export async function runProject(input: RunInput, deps: RunDeps): Promise<RunResult> {
  const { record, activities: acts } = deps;
  const { checkout } = acts;
  const { repo, kind, project } = input;
  record({ repository: `${repo.owner}/${repo.name}`, project: project.name, kind, trigger: input.record.trigger, pr: input.record.pr, actor: input.record.actor, approvers: input.record.approvers });
  const base = { runId: deps.runId, kind, project: project.name, label: input.label };
  let at: { workDir: string; sha: string; baseSha?: string; mergeSha?: string };
  try {
    const { mergeInto } = input.source;
    const out = await checkout({ repo, prNumber: input.source.prNumber, cloneUrl: input.source.cloneUrl, ...(input.source.sha ? { sha: input.source.sha } : { branch: input.source.branch ?? 'HEAD' }), ...(mergeInto ? { mergeInto } : {}) });
    // The head does not merge into its base: nothing runs (the starter says which files conflict).
    if (out.conflicts) return done({ ...base, sha: out.sha, workDir: '', baseSha: out.baseSha, outcome: 'conflict', conflicts: out.conflicts });
    at = { workDir: out.workDir, sha: out.sha, ...(out.baseSha ? { baseSha: out.baseSha, mergeSha: out.mergeSha } : {}) };
  } catch (err) {
    // A rollback that cannot even fetch its target is a failed rollback, reported as such; elsewhere the
    // starter reports the error where the user is.
    if (kind !== 'rollback' || !(err instanceof ActivityFailure)) throw err;
    return done({ ...base, sha: '', workDir: '', outcome: 'rollback-failed', failure: { step: 'checkout', error: failureMessage(err) } });
  }
  record({ headSha: at.sha });
  return done(await RUNNERS[kind](input, { ...base, ...at }, acts));

  async function done(result: RunResult): Promise<RunResult> {
    // An apply that planned first has its fresh plan; else it applied the saved plan, whose counts came with it.
    const summary = result.plan?.summary ?? result.drift?.plan.summary ?? (kind === 'apply' ? input.plan?.counts : undefined);
    // Before the outcome, which tells readers the run is over.
    await deps.keepLog?.(result);
    record({ outcome: result.outcome, ...(summary ? { counts: runCounts(summary) } : {}) });
    return result;
  }
}

type Started = Pick<RunResult, 'runId' | 'kind' | 'project' | 'label' | 'sha' | 'workDir' | 'baseSha' | 'mergeSha'>;
type Runner = (input: RunInput, run: Started, acts: RunActivities) => Promise<RunResult>;

const RUNNERS: Record<RunInput['kind'], Runner> = {
  plan: planRun,
  apply: applyRun,
  rollback: rollbackRun,
  drift: driftRun,
  destroy: destroyRun,
};

const target = (run: Started, p: { dir: string; workspace: string; binary: RunProject['binary'] }, label: string): ProjectTarget => ({
  workDir: run.workDir,
  projectDir: p.dir,
  workspace: p.workspace,
  binary: p.binary,
  label,
});

/** What a project's hooks are told (docs/config.md); PLANFILE is added by the activity. */
const hookEnv = (input: RunInput, run: Started): Record<string, string> => ({
  PROJECT: input.project.name,
  DIR: input.project.dir,
  WORKSPACE: input.project.workspace,
  HEAD_SHA: run.sha,
  // Merged into a base: that base commit (what the plan is made against).
  BASE_SHA: run.baseSha ?? input.baseSha ?? '',
  PR_NUMBER: input.record.pr ? String(input.record.pr) : '',
});

/** The upstreams' outputs: this operation's own applies first, else their current state. */
async function upstreamInputs(input: RunInput, run: Started, project: RunProject, label: string, { readOutputs }: RunActivities): Promise<OutputInput[]> {
  const read = new Map<string, string>(Object.entries(input.upstreamOutputs ?? {}));
  const inputs: OutputInput[] = [];
  for (const [variable, ref] of Object.entries(project.inputs)) {
    if (!read.has(ref.project)) {
      const up = input.known.find((k) => k.name === ref.project);
      if (!up) throw ApplicationFailure.nonRetryable(`input ${variable} reads unknown project ${ref.project}`, 'ConfigInvalid');
      read.set(ref.project, (await readOutputs(target(run, up, `${label}-in`))).outputsFile);
    }
    inputs.push({ variable, project: ref.project, output: ref.output, outputsFile: read.get(ref.project)! });
  }
  return inputs;
}

function planned(run: Started, result: PlanResult): RunResult {
  if (!result.ok) return { ...run, outcome: 'failed', failure: { step: result.step, exitCode: result.exitCode, outputFile: result.outputFile } };
  const { ok: _, ...saved } = result;
  return { ...run, outcome: result.summary.hasChanges ? 'planned' : 'no-changes', plan: saved };
}

async function planRun(input: RunInput, run: Started, acts: RunActivities): Promise<RunResult> {
  const { plan } = acts;
  const p = input.project;
  try {
    const inputs = await upstreamInputs(input, run, p, input.label, acts);
    const result = await plan({
      ...target(run, p, input.label),
      extraArgs: input.extraArgs ?? [],
      inputs,
      env: p.env,
      hooks: { before: p.hooks.prePlan, after: p.hooks.postPlan },
      hookEnv: hookEnv(input, run),
    });
    const made = planned(run, result);
    return made.outcome === 'planned' ? { ...made, ...(await checkPolicies(input, run, made.plan!, acts)) } : made;
  } catch (err) {
    // terraform could not run at all (after retries): a failed plan, with the reason, for the starter to show.
    if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
    return { ...run, outcome: 'failed', failure: { error: failureMessage(err) } };
  }
}

/**
 * The project's policy checks against a plan with changes (a plan without changes has nothing to apply,
 * so nothing to let through); a check that cannot run at all fails, with the reason.
 */
async function checkPolicies(input: RunInput, run: Started, saved: NonNullable<RunResult['plan']>, { checkout, runPolicyChecks }: RunActivities): Promise<Pick<RunResult, 'policies'>> {
  const checks = input.project.policies ?? [];
  if (checks.length === 0) return {};
  const p = input.project;
  try {
    const env = { PROJECT: p.name, DIR: p.dir, WORKSPACE: p.workspace };
    // A check's files (a script, a rules dir) come from the reviewed commit, never from the PR under review.
    const reviewed = p.policiesAt ? await checkout({ repo: input.repo, prNumber: input.source.prNumber, cloneUrl: input.repo.cloneUrl, sha: p.policiesAt }) : undefined;
    const filesFrom = reviewed?.workDir;
    return { policies: await runPolicyChecks({ ...target(run, p, input.label), showJsonFile: saved.showJsonFile, checks, env, ...(filesFrom ? { filesFrom } : {}) }) };
  } catch (err) {
    if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
    const error = failureMessage(err);
    return { policies: checks.map((c) => ({ name: c.name, passed: false, error })) };
  }
}

async function applyRun(input: RunInput, run: Started, acts: RunActivities): Promise<RunResult> {
  const { apply, comparePlans, plan, readOutputs } = acts;
  const p = input.project;
  const inputs = await upstreamInputs(input, run, p, input.label, acts);
  // With planFirst there is no plan yet: the one made below is applied.
  let saved = input.plan!;
  let fresh: RunResult['plan'];
  if (input.replanAgainst || input.planFirst) {
    // Upstreams changed under it (or, planFirst, there is no plan yet): plan with their outputs now; with an
    // approved plan, apply only what was approved.
    const replanned = planned(run, await plan({ ...target(run, p, input.label), inputs, env: p.env, hooks: { before: p.hooks.prePlan, after: p.hooks.postPlan }, hookEnv: hookEnv(input, run) }));
    if (replanned.outcome === 'failed') return { ...replanned, outcome: 'apply-failed' };
    fresh = replanned.plan!;
    if (input.replanAgainst) {
      const comparison = await comparePlans({ approved: input.replanAgainst, current: fresh });
      if (!comparison.same) return { ...run, outcome: 'changed', plan: fresh, changes: comparison.changes, diffFile: comparison.diffFile };
    }
    saved = fresh;
  }
  const outputsBeforeFile = input.keepOutputsBefore ? (await readOutputs(target(run, p, `${input.label}-before`))).outputsFile : undefined;
  try {
    const result = await apply({
      ...target(run, p, input.label),
      planFile: saved.planFile,
      expectedSha256: saved.planSha256,
      inputs,
      env: p.env,
      hooks: { before: p.hooks.preApply, after: p.hooks.postApply },
      hookEnv: hookEnv(input, run),
    });
    return {
      ...run,
      outcome: result.ok ? 'applied' : 'apply-failed',
      logFile: result.outputFile,
      ...(result.outputsFile ? { outputsFile: result.outputsFile } : {}),
      ...(outputsBeforeFile ? { outputsBeforeFile } : {}),
      ...(fresh ? { plan: fresh } : {}),
      ...(result.ok ? {} : { failure: { step: 'apply' as const, exitCode: result.exitCode, outputFile: result.outputFile } }),
    };
  } catch (err) {
    if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
    // A plan file gone or changed is never applied: stale. Anything else (the worker died, a timeout):
    // never retried blindly — what became of it is found out first.
    const type = err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
    if (type === 'PlanMissing' || type === 'PlanMismatch') return { ...run, outcome: 'stale', failure: { step: 'apply', error: failureMessage(err) } };
    return resolveInterrupted(input, run, acts, { inputs, saved, error: failureMessage(err), ...(outputsBeforeFile ? { outputsBeforeFile } : {}) });
  }
}

/**
 * An apply whose worker died (or that timed out): once whatever of it still runs has ended, a plan with the
 * same inputs tells whether it completed (reported as applied, verified), never started (the fresh plan is
 * applied once, under the same approval), or anything else ('unknown', with the fresh plan for a person).
 * A second interruption is never resolved again: it stays 'unknown'.
 */
async function resolveInterrupted(
  input: RunInput,
  run: Started,
  acts: RunActivities,
  was: { inputs: OutputInput[]; saved: NonNullable<RunInput['plan']>; error: string; outputsBeforeFile?: string },
): Promise<RunResult> {
  const p = input.project;
  const unknown = (error: string, planTextFile?: string): RunResult => ({
    ...run,
    outcome: 'unknown',
    failure: { step: 'apply', error },
    ...(planTextFile ? { afterRestartPlanTextFile: planTextFile } : {}),
  });
  if (!acts.resolveInterruptedApply) return unknown(was.error);
  const label = `${input.label}-resume`;
  const again = { inputs: was.inputs, env: p.env, hookEnv: hookEnv(input, run) };
  let found;
  try {
    found = await acts.resolveInterruptedApply({
      interrupted: target(run, p, input.label),
      planSha256: was.saved.planSha256,
      replan: { ...target(run, p, label), ...again, extraArgs: input.extraArgs ?? [], hooks: { before: p.hooks.prePlan, after: p.hooks.postPlan } },
    });
  } catch (err) {
    if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
    return unknown(`${was.error}\nFinding out what became of it failed too: ${failureMessage(err)}`);
  }
  const note = `${was.error}\nAfter the restart: ${found.reason}.`;
  const extra = was.outputsBeforeFile ? { outputsBeforeFile: was.outputsBeforeFile } : {};
  if (found.verdict === 'completed') {
    try {
      const { outputsFile } = await acts.readOutputs(target(run, p, label));
      return { ...run, ...extra, outcome: 'applied', verifiedAfterRestart: true, outputsFile, logFile: found.plan!.planTextFile };
    } catch (err) {
      // Done, but downstreams cannot be fed without its outputs: a person finishes it.
      if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
      return unknown(`${note}\nIts outputs could not be read: ${failureMessage(err)}`, found.plan!.planTextFile);
    }
  }
  if (found.verdict === 'unknown') return unknown(note, found.plan?.planTextFile ?? found.failureFile);
  // Untouched: nothing of the approved apply happened, and the fresh plan holds exactly its actions.
  try {
    const result = await acts.apply({ ...target(run, p, label), ...again, planFile: found.plan!.planFile, expectedSha256: found.plan!.planSha256, hooks: { before: p.hooks.preApply, after: p.hooks.postApply } });
    return {
      ...run,
      ...extra,
      outcome: result.ok ? 'applied' : 'apply-failed',
      logFile: result.outputFile,
      ...(result.outputsFile ? { outputsFile: result.outputsFile } : {}),
      ...(result.ok ? {} : { failure: { step: 'apply' as const, exitCode: result.exitCode, outputFile: result.outputFile } }),
    };
  } catch (err) {
    if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
    return unknown(`${note}\nThe apply of the fresh plan was interrupted too: ${failureMessage(err)}`, found.plan!.planTextFile);
  }
}

/**
 * A destroy in two runs with an approval between them: without a plan, `terraform plan -destroy` (the plan
 * a person reviews); with one, the apply of exactly that plan (hash-checked, like every apply). A failed
 * destroy is reported, never compensated: nothing is recreated on its own.
 */
function destroyRun(input: RunInput, run: Started, acts: RunActivities): Promise<RunResult> {
  if (input.plan) return applyRun({ ...input, replanAgainst: undefined, keepOutputsBefore: false }, run, acts);
  return planRun({ ...input, extraArgs: ['-destroy'] }, run, acts);
}

/** Plans and applies the project as the target revision describes it (the compensation of a failed apply). */
async function rollbackRun(input: RunInput, run: Started, acts: RunActivities): Promise<RunResult> {
  const { apply, plan, selectProjects } = acts;
  try {
    let p = input.project;
    let known = input.known;
    if (input.settingsFromTarget) {
      const then = await selectProjects({ repo: input.repo, prNumber: input.source.prNumber, cloneUrl: input.source.cloneUrl, sha: run.sha, listProjects: true });
      const found = then.allProjects?.find((x) => x.name === p.name);
      if (found) p = { name: found.name, dir: found.dir, workspace: found.workspace, binary: found.terraform, env: found.env, hooks: found.hooks, inputs: found.inputs };
      if (then.allProjects) known = then.allProjects.map((x) => ({ name: x.name, dir: x.dir, workspace: x.workspace, binary: x.terraform }));
    }
    const inputs = await upstreamInputs({ ...input, known }, run, p, input.label, acts);
    const at = target(run, p, input.label);
    const made = await plan({ ...at, inputs, env: p.env });
    if (!made.ok) return { ...run, outcome: 'rollback-failed', logFile: made.outputFile };
    const result = await apply({ ...at, planFile: made.planFile, expectedSha256: made.planSha256, inputs, env: p.env });
    return { ...run, outcome: result.ok ? 'rolled-back' : 'rollback-failed', logFile: result.outputFile };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    return { ...run, outcome: 'rollback-failed', failure: { error: failureMessage(err) } };
  }
}

/** A refresh-only and a normal plan; the normal plan (label `<label>-plan`) is what a reconcile applies. */
async function driftRun(input: RunInput, run: Started, acts: RunActivities): Promise<RunResult> {
  const { detectDrift } = acts;
  const p = input.project;
  const inputs = await upstreamInputs(input, run, p, input.label, acts);
  const report = await detectDrift({ ...target(run, p, input.label), env: p.env, inputs });
  if (report.error) return { ...run, outcome: 'failed', failure: { step: report.error.step, outputFile: report.error.outputFile } };
  const { plan: made } = report;
  return {
    ...run,
    outcome: report.drifted ? 'drifted' : 'clean',
    drift: {
      resources: report.resources,
      plan: { planFile: made.planFile, planSha256: made.planSha256, summary: made.summary, planTextFile: made.textFile, label: `${input.label}-plan` },
      ...(report.refreshOnly.changed ? { refreshTextFile: report.refreshOnly.textFile } : {}),
    },
  };
}

export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Starts a run as a child of the calling workflow and waits for its result. `next` numbers the caller's
 * runs; an id another workflow's run holds right now (two PRs at one commit) takes the next number.
 * `idSha` names a run whose commit is known only once it checks out (a branch head) by a related one.
 */
export async function startRun(input: RunInput, next: () => number, idSha = input.source.sha ?? 'head'): Promise<RunResult> {
  const sha = idSha;
  for (;;) {
    const workflowId = runWorkflowId(input.repo, input.project.name, input.kind, sha, next());
    try {
      return await executeChild(PROJECT_RUN_WORKFLOW_TYPE, { workflowId, args: [input] });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
}
