// Plan and apply runs of the project model: the projects a push affects (or a command names) are locked,
// planned in dependency order with their upstreams' outputs, and reported in one comment; approved
// projects apply in dependency order, downstreams re-planned after their upstreams applied, and a failed
// apply compensates the projects of the run newest first. With one project, everything the PR sees is
// what the single-project loop has always shown.
import { CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import type { ApplyResult, OutputInput, PlanResult, RenderRequest } from '../shared/activity-contracts.ts';
import type { PostedComment } from '../activities/github.ts';
import type { PlanComparison } from '../activities/plan-compare.ts';
import type { ProjectApplyReport } from '../activities/multi-project-comment.ts';
import { runDag } from '../shared/dag.ts';
import type { LockClient } from './lock-client.ts';
import { applier, github, workspace } from './pr-activities.ts';
import { defaultBranchPolicy } from './authorize.ts';
import type { DefaultBranchPolicy } from '../shared/activity-contracts.ts';
import type { KnownProject, PlanRecord, PrState } from './pr-state.ts';
import { chooseProjects, pending, planReport, toProjectPlan, totalSummary, upstreamAppliedSincePlan, type PlanTarget, type ProjectPlan } from './projects.ts';
import { Saga } from './saga.ts';
import { CHECK_APPLY, CHECK_PLAN, type CheckAction, type RepoRef, lockWorkflowId } from '../shared/contracts.ts';

type Conclusion = 'success' | 'failure' | 'neutral' | 'cancelled' | 'skipped';

export interface ProjectRunContext {
  repo: RepoRef;
  number: number;
  s: PrState;
  locks: LockClient;
  post(key: string, template: string, data: Record<string, unknown>, files?: Record<string, string>): Promise<PostedComment>;
  check(
    name: string,
    sha: string,
    status: 'queued' | 'in_progress' | 'completed',
    output: RenderRequest,
    opts?: { checkRunId?: number; conclusion?: Conclusion; actions?: CheckAction[] },
  ): Promise<number>;
  retirePlan(reason: 'superseded' | 'discarded' | 'closed'): Promise<void>;
  failureMessage(err: unknown): string;
  failureType(err: unknown): string | undefined;
}

const shortSha = (sha: string) => sha.slice(0, 7);

/** What a project's hooks are told (docs/config.md), PLANFILE added by the activity. */
function hookEnv(ctx: ProjectRunContext, p: ProjectPlan, sha: string): Record<string, string> {
  return {
    PROJECT: p.name,
    DIR: p.dir,
    WORKSPACE: p.workspace,
    HEAD_SHA: sha,
    BASE_SHA: ctx.s.snapshot?.baseSha ?? '',
    PR_NUMBER: String(ctx.number),
  };
}
const projectData = (p: ProjectPlan) => ({ project: p.dir, workspace: p.workspace, name: p.name });

// ---- plan ---------------------------------------------------------------------------------------

export async function planProjects(ctx: ProjectRunContext, planId: number, sha: string, target: PlanTarget = {}, extraArgs: string[] = []): Promise<void> {
  const { s, repo, number } = ctx;
  const snapshot = s.snapshot!;
  const data = { sha, shortSha: shortSha(sha) };
  const key = `plan-${planId}`;
  const checkRunId = await ctx.check(CHECK_PLAN, sha, 'in_progress', { template: 'checks/plans-running', data });
  let stage: 'checkout' | 'plan' | 'report' = 'checkout';
  let projects: ProjectPlan[] = [];
  const fail = (template: string, d: Record<string, unknown>) =>
    ctx.check(CHECK_PLAN, sha, 'completed', { template, data: d }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
  try {
    // A fork's code never runs unless the default branch's .terrapin.yml (and the operator) allows it:
    // the fork's own copy, or a base branch the PR chose, could say anything. Nor does anything run for a
    // PR whose base branch the operator does not allow. Versioned: runs recorded before replay without it.
    const fromFork = snapshot.fromFork ?? snapshot.headCloneUrl !== repo.cloneUrl;
    if (patched('policy-from-default-branch')) {
      const policy = await defaultBranchPolicy(repo, number, { baseBranch: snapshot.baseRef, labels: snapshot.labels ?? [] });
      if (!policy.baseAllowed) {
        await CancellationScope.nonCancellable(async () => {
          await refuseBase(ctx, key, sha, policy, 'plan');
          await ctx.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-base-refused', data: { ...data, baseRef: snapshot.baseRef } }, { checkRunId, conclusion: 'neutral' });
        });
        return;
      }
      if (fromFork && !policy.allowForks) {
        await CancellationScope.nonCancellable(async () => {
          await ctx.post(key, 'fork-refused', data);
          await ctx.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-fork', data }, { checkRunId, conclusion: 'neutral' });
        });
        return;
      }
    } else if (fromFork && patched('fork-gate')) {
      const base = await workspace.selectProjects({ repo, prNumber: number, cloneUrl: repo.cloneUrl, sha: snapshot.baseSha });
      if (!base.allowForks) {
        await CancellationScope.nonCancellable(async () => {
          await ctx.post(key, 'fork-refused', data);
          await ctx.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-fork', data }, { checkRunId, conclusion: 'neutral' });
        });
        return;
      }
    }
    const checkout = await workspace.selectProjects({
      repo,
      prNumber: number,
      cloneUrl: snapshot.headCloneUrl,
      sha,
      pr: { baseBranch: snapshot.baseRef, labels: snapshot.labels ?? [] },
      baseSha: snapshot.baseSha,
    });
    if (checkout.configErrors?.length) {
      const errors = checkout.configErrors;
      await CancellationScope.nonCancellable(async () => {
        await ctx.post(key, 'config-error', { ...data, errors });
        await fail('checks/plan-config-error', { ...data, count: errors.length });
      });
      return;
    }
    const choice = chooseProjects(checkout.projects ?? [], checkout.allProjects ?? [], target);
    if ('error' in choice) {
      await CancellationScope.nonCancellable(async () => {
        await ctx.post(key, choice.error.template, { ...data, ...choice.error.data });
        await fail('checks/plan-nothing', data);
      });
      return;
    }
    if (choice.projects.length === 0) {
      await CancellationScope.nonCancellable(async () => {
        await ctx.post(key, 'no-projects', data);
        await ctx.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-no-projects', data }, { checkRunId, conclusion: 'success', actions: ['replan'] });
      });
      return;
    }
    projects = choice.projects.map((p) => toProjectPlan(p, `p${planId}`));
    const single = projects.length === 1;
    if (!single) {
      for (const p of projects) {
        p.checkRunId = await ctx.check(`${CHECK_PLAN}: ${p.name}`, sha, 'in_progress', { template: 'checks/plan-running', data: { ...data, ...projectData(p) } });
      }
    }
    await lockProjects(ctx, projects);

    stage = 'plan';
    const known = knownProjects(checkout.allProjects ?? []);
    const results = await planInDependencyOrder(ctx, sha, projects, known, checkout.workDir, checkout.parallelism ?? 1, extraArgs);
    applyPlanResults(projects, results);

    stage = 'report';
    // Reported even if a newer push arrives meanwhile: the plans are already made.
    await CancellationScope.nonCancellable(() =>
      reportPlans(ctx, { planId, sha, key, checkRunId, projects, known, workDir: checkout.workDir, parallelism: checkout.parallelism ?? 1, policyChanges: checkout.policyChanges, policy: checkout.policySha ? { branch: checkout.defaultBranch, sha: checkout.policySha } : undefined }),
    );
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      const cancelled = isCancellation(err);
      // Per-project checks still running would otherwise stay "in progress" on this commit forever.
      for (const p of projects.filter((x) => x.checkRunId !== undefined)) {
        await ctx.check(`${CHECK_PLAN}: ${p.name}`, sha, 'completed', { template: cancelled ? 'checks/plan-cancelled' : 'checks/plan-failed', data: { ...data, ...projectData(p) } }, { checkRunId: p.checkRunId, conclusion: cancelled ? 'cancelled' : 'failure', actions: ['replan'] });
      }
      if (cancelled) {
        await ctx.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-cancelled', data }, { checkRunId, conclusion: 'cancelled', actions: ['replan'] });
        return;
      }
      const only = projects.length === 1 ? projectData(projects[0]!) : {};
      await ctx.post(key, 'plan-error', { ...data, ...only, step: stage, error: ctx.failureMessage(err) });
      await fail('checks/plan-failed', data);
    });
    if (isCancellation(err)) throw err;
  }
}

/**
 * Says once why a PR whose base branch is not allowed is neither planned nor applied: once per base
 * branch for pushes, at most once per push for commands (a refused command otherwise stays quiet).
 */
export async function refuseBase(ctx: ProjectRunContext, key: string, sha: string, policy: DefaultBranchPolicy, by: 'plan' | 'command'): Promise<void> {
  const baseRef = ctx.s.snapshot!.baseRef;
  const last = ctx.s.baseRefusal;
  const told = last?.baseRef === baseRef && (by === 'plan' || last.sha === sha);
  if (told) return;
  ctx.s.baseRefusal = { baseRef, sha };
  const allowed = policy.allowedBaseBranches;
  const onlyDefault = allowed.length === 1 && allowed[0] === policy.branch;
  await ctx.post(key, 'base-refused', { baseRef, defaultBranch: policy.branch, allowed, onlyDefault, shortSha: shortSha(sha) });
}

function knownProjects(all: ReadonlyArray<{ name: string; dir: string; workspace: string; terraform: ProjectPlan['binary'] }>): KnownProject[] {
  return all.map((p) => ({ name: p.name, dir: p.dir, workspace: p.workspace, binary: p.terraform }));
}

/** Takes each project's lock (lock: onPlan); recorded before asking, so close releases it whatever happens. */
async function lockProjects(ctx: ProjectRunContext, projects: ProjectPlan[]): Promise<void> {
  for (const p of projects) {
    if (p.lock !== 'onPlan') continue;
    const lockId = lockWorkflowId(ctx.repo.owner, ctx.repo.name, p.dir, p.workspace);
    ctx.s.locks ??= [];
    if (!ctx.s.locks.includes(lockId)) ctx.s.locks.push(lockId);
    const answer = await CancellationScope.nonCancellable(() => ctx.locks.acquire(lockId));
    if (!answer.granted) {
      p.status = 'locked';
      p.lockedBy = answer.holder?.pr;
    }
  }
}

type Outcome<T> = { status: 'succeeded'; value: T } | { status: 'failed'; error: unknown } | { status: 'skipped' };

async function planInDependencyOrder(
  ctx: ProjectRunContext,
  sha: string,
  projects: ProjectPlan[],
  known: KnownProject[],
  workDir: string,
  parallelism: number,
  extraArgs: string[],
): Promise<Map<string, Outcome<PlanResult>>> {
  const plannable = projects.filter((p) => p.status !== 'locked');
  const names = new Set(plannable.map((p) => p.name));
  // At plan time every downstream reads its upstreams' current outputs (their state, before this PR).
  const outputs = new Map<string, Promise<string>>();
  const outputsOf = (name: string, label: string) => {
    if (!outputs.has(name)) {
      const k = known.find((x) => x.name === name)!;
      outputs.set(name, workspace.readOutputs({ workDir, projectDir: k.dir, workspace: k.workspace, binary: k.binary, label }).then((r) => r.outputsFile));
    }
    return outputs.get(name)!;
  };
  const outcomes = await runDag(
    plannable.map((p) => ({ name: p.name, dependsOn: p.dependsOn.filter((d) => names.has(d)) })),
    {
      parallelism,
      run: async (name) => {
        const p = projects.find((x) => x.name === name)!;
        const inputs: OutputInput[] = [];
        for (const [variable, ref] of Object.entries(p.inputs)) {
          inputs.push({ variable, project: ref.project, output: ref.output, outputsFile: await outputsOf(ref.project, `${p.label}-in`) });
        }
        return workspace.plan({
          workDir,
          projectDir: p.dir,
          workspace: p.workspace,
          binary: p.binary,
          label: p.label,
          extraArgs,
          inputs,
          env: p.env,
          hooks: { before: p.hooks.prePlan, after: p.hooks.postPlan },
          hookEnv: hookEnv(ctx, p, sha),
        });
      },
    },
  );
  for (const outcome of outcomes.values()) {
    if (outcome.status === 'failed' && isCancellation(outcome.error)) throw outcome.error;
  }
  return outcomes as Map<string, Outcome<PlanResult>>;
}

function applyPlanResults(projects: ProjectPlan[], outcomes: Map<string, Outcome<PlanResult>>): void {
  for (const p of projects) {
    const outcome = outcomes.get(p.name);
    if (!outcome) continue; // locked
    if (outcome.status === 'skipped') {
      p.status = 'skipped';
      p.skippedBecause = p.dependsOn.find((d) => {
        const up = projects.find((x) => x.name === d);
        return up && (up.status === 'failed' || up.status === 'skipped');
      });
      continue;
    }
    if (outcome.status === 'failed') {
      p.status = 'failed';
      p.error = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      continue;
    }
    const r = outcome.value;
    if (!r.ok) {
      p.status = 'failed';
      p.errorFile = r.outputFile;
      p.errorStep = r.step;
      p.exitCode = r.exitCode;
      continue;
    }
    Object.assign(p, {
      status: r.summary.hasChanges ? 'planned' : 'no-changes',
      planFile: r.planFile,
      planSha256: r.planSha256,
      summary: r.summary,
      planTextFile: r.planTextFile,
      showJsonFile: r.showJsonFile,
    });
  }
}

async function reportPlans(
  ctx: ProjectRunContext,
  run: {
    planId: number;
    sha: string;
    key: string;
    checkRunId: number;
    projects: ProjectPlan[];
    known: KnownProject[];
    workDir: string;
    parallelism: number;
    /** Policy keys the PR's .terrapin.yml changes: they take effect after merge. */
    policyChanges?: string[];
    /** The default branch commit the policy was read at. */
    policy?: { branch?: string; sha: string };
  },
): Promise<void> {
  const { s } = ctx;
  const { sha, key, checkRunId, projects } = run;
  const data = { sha, shortSha: shortSha(sha) };
  const single = projects.length === 1;
  // Approvals must be written after this plan was shown. Taken before its comment is posted, not once the
  // reports are done: when that is recorded depends on when a worker next runs this workflow, and an
  // approval written in between is about this plan.
  const shownFrom = Date.now();
  let comment: PostedComment;
  if (single) {
    // One project: the same comment and checks as the single-project loop.
    const p = projects[0]!;
    const d = { ...data, ...projectData(p) };
    if (p.status === 'failed') {
      await ctx.post(key, 'plan-error', { ...d, step: p.errorStep ?? 'plan', exitCode: p.exitCode, error: p.error }, p.errorFile ? { output: p.errorFile } : undefined);
      await ctx.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-failed', data: d }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
      return;
    }
    if (p.status === 'locked') {
      await ctx.post(key, 'replies/locked', { ...d, holderPr: p.lockedBy });
      await ctx.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-locked', data: { ...d, holderPr: p.lockedBy } }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
      return;
    }
    comment = await ctx.post(key, 'plan', { ...d, summaryLine: p.summary!.line, hasChanges: p.summary!.hasChanges, policyChanges: run.policyChanges }, { planText: p.planTextFile! });
  } else {
    const previous = s.plan?.projects;
    comment = await github.postPlanReport({
      repo: ctx.repo,
      number: ctx.number,
      key,
      report: { ...data, projects: projects.map((p) => planReport(p, previous?.find((x) => x.name === p.name))), ...(run.policyChanges?.length ? { policyChanges: run.policyChanges } : {}) },
    });
  }
  await ctx.retirePlan('superseded');

  const total = totalSummary(projects);
  if (!single) {
    for (const p of projects) {
      const d = { ...data, ...projectData(p), summaryLine: p.summary?.line, holderPr: p.lockedBy, upstream: p.skippedBecause };
      const [template, conclusion] = PLAN_CHECKS[p.status] ?? PLAN_CHECKS.failed!;
      await ctx.check(`${CHECK_PLAN}: ${p.name}`, sha, 'completed', { template, data: d }, { checkRunId: p.checkRunId, conclusion, actions: ['replan'] });
    }
  }
  const incomplete = projects.filter((p) => !['planned', 'no-changes'].includes(p.status)).length;
  const summaryData = { ...data, ...(single ? projectData(projects[0]!) : {}), summaryLine: total.line, planned: projects.length - incomplete, total: projects.length };
  // Which reviewed copy decided who may approve and what runs: shown on the plan check, for the record.
  const policyData = run.policy ? { policyBranch: run.policy.branch, policySha: run.policy.sha } : {};
  await ctx.check(
    CHECK_PLAN,
    sha,
    'completed',
    { template: single ? 'checks/plan-done' : incomplete ? 'checks/plans-incomplete' : 'checks/plans-done', data: { ...summaryData, ...policyData } },
    { checkRunId, conclusion: incomplete ? 'failure' : 'success', actions: ['replan'] },
  );
  const hasChanges = pending(projects).length > 0;
  // apply: afterMerge — approving is all the PR can do; the merge commit deploys.
  const afterMerge = hasChanges && pending(projects).every((p) => p.apply === 'afterMerge');
  const applyCheckId = hasChanges
    ? afterMerge
      ? await ctx.check(CHECK_APPLY, sha, 'queued', { template: 'checks/apply-after-merge-waiting', data: summaryData }, { actions: ['approve'] })
      : await ctx.check(CHECK_APPLY, sha, 'queued', { template: 'checks/apply-waiting', data: summaryData }, { actions: ['approve', 'apply'] })
    : await ctx.check(CHECK_APPLY, sha, 'completed', { template: 'checks/apply-nothing', data: summaryData }, { conclusion: 'success' });
  const first = projects[0]!;
  const plan: PlanRecord = {
    id: run.planId,
    sha,
    workDir: run.workDir,
    planFile: single ? (first.planFile ?? '') : '',
    planSha256: single ? (first.planSha256 ?? '') : '',
    summary: single && first.summary ? first.summary : { ...total, import: 0, outputsChanged: false, hasChanges },
    onFailure: first.onFailure,
    commentNodeIds: comment.nodeIds,
    postedAt: shownFrom,
    applyCheckId,
    status: 'ready',
    requirements: single ? first.requirements : undefined,
    projects,
    known: run.known,
    parallelism: run.parallelism,
  };
  // Approvable only once every surface shows it: a plan whose reporting failed is not.
  s.plan = plan;
}

const PLAN_CHECKS: Partial<Record<ProjectPlan['status'], [string, Conclusion]>> = {
  planned: ['checks/plan-done', 'success'],
  'no-changes': ['checks/plan-done', 'success'],
  failed: ['checks/plan-failed', 'failure'],
  locked: ['checks/plan-locked', 'failure'],
  skipped: ['checks/plan-skipped', 'skipped'],
};

// ---- apply --------------------------------------------------------------------------------------

interface Rollback {
  status: 'rolled-back' | 'rollback-failed';
  baseRef: string;
  baseSha?: string;
  outputFile?: string;
  error?: string;
}

type ApplyFailure =
  | { kind: 'failed'; outputFile?: string }
  | { kind: 'stale' }
  | { kind: 'unknown'; error: string }
  | { kind: 'changed'; comparison: PlanComparison; fresh: Extract<PlanResult, { ok: true }>; label: string };

/** Applies the named projects of a project-model plan, in dependency order. Runs as the apply job. */
export async function applyProjects(ctx: ProjectRunContext, plan: PlanRecord, names: string[], actor: string): Promise<void> {
  const { s, repo } = ctx;
  const projects = plan.projects!;
  const known = plan.known ?? [];
  const chosen = projects.filter((p) => names.includes(p.name));
  const single = projects.length === 1;
  plan.status = 'applying';
  const data = { sha: plan.sha, shortSha: shortSha(plan.sha), summaryLine: totalSummary(chosen).line, actor, ...(single ? projectData(projects[0]!) : {}) };
  const checkRunId = await ctx.check(CHECK_APPLY, plan.sha, 'in_progress', { template: 'checks/apply-running', data }, { checkRunId: plan.applyCheckId });
  if (!single) {
    for (const p of chosen) {
      p.applyCheckId = await ctx.check(`${CHECK_APPLY}: ${p.name}`, plan.sha, 'in_progress', { template: 'checks/apply-running', data: { ...data, ...projectData(p), summaryLine: p.summary?.line } });
    }
  }

  const target = (name: string, label: string) => {
    const k = known.find((x) => x.name === name) ?? projects.find((x) => x.name === name)!;
    return { workDir: plan.workDir, projectDir: k.dir, workspace: k.workspace, binary: k.binary, label };
  };
  const applied = new Map<string, string>(); // outputs after this run's apply
  const before = new Map<string, string>(); // outputs before it, for rolling downstreams back
  const logs = new Map<string, string>();
  const failures = new Map<string, ApplyFailure>();
  const saga = new Saga<Rollback>();
  let baseCheckout: Promise<{ workDir: string; sha: string }> | undefined;

  const inputsFor = async (p: ProjectPlan, label: string, outputsAt: Map<string, string>): Promise<OutputInput[]> => {
    const inputs: OutputInput[] = [];
    for (const [variable, ref] of Object.entries(p.inputs)) {
      const outputsFile = outputsAt.get(ref.project) ?? (await workspace.readOutputs(target(ref.project, `${label}-in`))).outputsFile;
      inputs.push({ variable, project: ref.project, output: ref.output, outputsFile });
    }
    return inputs;
  };

  /** Applies the base branch's version of the project, with its upstreams' outputs as they were before this run. */
  const rollback = async (p: ProjectPlan): Promise<Rollback> => {
    const baseRef = s.snapshot!.baseRef;
    try {
      baseCheckout ??= workspace.checkout({ repo, prNumber: ctx.number, cloneUrl: repo.cloneUrl, branch: baseRef });
      const base = await baseCheckout;
      const label = `${p.label}-rb`;
      const at = { workDir: base.workDir, projectDir: p.dir, workspace: p.workspace, binary: p.binary, label };
      const planned = await workspace.plan({ ...at, inputs: await inputsFor(p, label, before) });
      if (!planned.ok) return { status: 'rollback-failed', baseRef, baseSha: base.sha, outputFile: planned.outputFile };
      const done = await applier.apply({ ...at, planFile: planned.planFile, expectedSha256: planned.planSha256 });
      return { status: done.ok ? 'rolled-back' : 'rollback-failed', baseRef, baseSha: base.sha, outputFile: done.outputFile };
    } catch (err) {
      return { status: 'rollback-failed', baseRef, error: ctx.failureMessage(err) };
    }
  };

  const tick = () => (plan.clock = (plan.clock ?? 0) + 1);
  const set = new Set(names);
  await runDag(
    chosen.map((p) => ({ name: p.name, dependsOn: p.dependsOn.filter((d) => set.has(d)) })),
    {
      parallelism: plan.parallelism ?? 1,
      stopOnFailure: true,
      run: async (name) => {
        const p = projects.find((x) => x.name === name)!;
        let label = p.label;
        let planFile = p.planFile!;
        let expected = p.planSha256!;
        let inputs = await inputsFor(p, label, applied);
        if (upstreamAppliedSincePlan(p, projects)) {
          // Upstreams changed under it: plan again with their new outputs; apply only what was approved.
          label = `${p.label}-a`;
          inputs = await inputsFor(p, label, applied);
          const fresh = await workspace.plan({ ...target(name, label), inputs, env: p.env, hooks: { before: p.hooks.prePlan, after: p.hooks.postPlan }, hookEnv: hookEnv(ctx, p, plan.sha) });
          if (!fresh.ok) {
            failures.set(name, { kind: 'failed', outputFile: fresh.outputFile });
            throw new Error(`re-plan of ${name} failed`);
          }
          const comparison = await workspace.comparePlans({ approved: { showJsonFile: p.showJsonFile!, planTextFile: p.planTextFile! }, current: fresh });
          if (!comparison.same) {
            failures.set(name, { kind: 'changed', comparison, fresh, label });
            throw new Error(`plan of ${name} changed`);
          }
          planFile = fresh.planFile;
          expected = fresh.planSha256;
          p.plannedAt = tick();
        }
        if (chosen.some((d) => d.dependsOn.includes(name))) before.set(name, (await workspace.readOutputs(target(name, `${label}-before`))).outputsFile);
        // Registered before the forward step: a failed apply may already have changed things.
        if (p.onFailure === 'rollback') saga.add(name, () => rollback(p));
        let result: ApplyResult;
        try {
          result = await applier.apply({
            ...target(name, label),
            planFile,
            expectedSha256: expected,
            inputs,
            env: p.env,
            hooks: { before: p.hooks.preApply, after: p.hooks.postApply },
            hookEnv: hookEnv(ctx, p, plan.sha),
          });
        } catch (err) {
          const type = ctx.failureType(err);
          failures.set(name, type === 'PlanMissing' || type === 'PlanMismatch' ? { kind: 'stale' } : { kind: 'unknown', error: ctx.failureMessage(err) });
          throw err;
        }
        logs.set(name, result.outputFile);
        if (!result.ok) {
          failures.set(name, { kind: 'failed', outputFile: result.outputFile });
          throw new Error(`apply of ${name} failed`);
        }
        applied.set(name, result.outputsFile!);
        p.appliedAt = tick();
      },
    },
  );

  const kinds = [...failures.values()].map((f) => f.kind);
  // Compensate only a known failure: with an unknown outcome anywhere, a person looks first.
  const rollbacks = new Map<string, Rollback>();
  if (kinds.includes('failed') && !kinds.includes('unknown')) {
    for (const r of await saga.compensate()) rollbacks.set(r.step, r.result ?? { status: 'rollback-failed', baseRef: s.snapshot!.baseRef, error: r.error });
  }
  for (const p of chosen) {
    const failure = failures.get(p.name);
    if (applied.has(p.name)) p.status = rollbacks.get(p.name)?.status === 'rolled-back' ? 'rolled-back' : 'applied';
    else if (failure?.kind === 'failed') p.status = rollbacks.get(p.name)?.status === 'rolled-back' ? 'rolled-back' : 'apply-failed';
    else if (failure?.kind === 'unknown') p.status = 'unknown';
  }
  plan.status = failures.size === 0 ? (pending(projects).length === 0 ? 'applied' : 'ready') : kinds.includes('unknown') ? 'unknown' : kinds.includes('failed') ? 'apply-failed' : 'ready';
  if (kinds.includes('stale')) {
    // Never apply something unreviewed: throw the plan away, re-plan, ask for approval again.
    plan.status = 'discarded';
    s.approvals = [];
    if (s.snapshot?.headSha === plan.sha) s.wantPlan = plan.sha;
  }

  const outcome: ApplyRunOutcome = { checkRunId, data, failures, logs, rollbacks };
  if (single) await reportSingleApply(ctx, plan, outcome);
  else await reportApply(ctx, plan, chosen, outcome);
  await askAgainForChangedPlans(ctx, plan, failures);
}

/** What an apply run produced, for its reports. */
interface ApplyRunOutcome {
  checkRunId: number;
  data: Record<string, unknown>;
  failures: Map<string, ApplyFailure>;
  /** Apply output per project. */
  logs: Map<string, string>;
  rollbacks: Map<string, Rollback>;
}

async function reportSingleApply(ctx: ProjectRunContext, plan: PlanRecord, { checkRunId, data, failures, logs, rollbacks }: ApplyRunOutcome): Promise<void> {
  const p = plan.projects![0]!;
  const failure = failures.get(p.name);
  const key = `apply-${plan.id}`;
  const done = (template: string, conclusion: Conclusion, d = data) => ctx.check(CHECK_APPLY, plan.sha, 'completed', { template, data: d }, { checkRunId, conclusion });
  if (!failure) {
    await ctx.post(key, 'apply', { ...data, outcome: 'applied' }, { output: logs.get(p.name)! });
    await done('checks/apply-done', 'success');
  } else if (failure.kind === 'stale') {
    await ctx.post(key, 'replies/plan-stale', { ...data, reason: 'changed' });
    await done('checks/apply-stale', 'failure');
  } else if (failure.kind === 'unknown') {
    await ctx.post(key, 'apply', { ...data, outcome: 'unknown', error: failure.error });
    await done('checks/apply-unknown', 'failure');
  } else if (failure.kind === 'failed') {
    const r = rollbacks.get(p.name);
    const rollback = r
      ? { ...r, shortBaseSha: r.baseSha ? shortSha(r.baseSha) : undefined }
      : { status: 'disabled', baseRef: ctx.s.snapshot!.baseRef };
    const files: Record<string, string> = {};
    if (failure.outputFile) files.output = failure.outputFile;
    if (r?.outputFile) files.rollbackOutput = r.outputFile;
    await ctx.post(key, 'apply', { ...data, outcome: 'failed', rollback }, files);
    await done('checks/apply-failed', 'failure', { ...data, rollback });
  }
}

async function reportApply(ctx: ProjectRunContext, plan: PlanRecord, chosen: ProjectPlan[], { checkRunId, data, failures, logs, rollbacks }: ApplyRunOutcome): Promise<void> {
  const projects: ProjectApplyReport[] = chosen.map((p) => {
    const r = rollbacks.get(p.name);
    const failure = failures.get(p.name);
    const result = applyResult(p, failure, r);
    return { name: p.name, dir: p.dir, workspace: p.workspace, result, outputFile: logs.get(p.name) ?? (failure?.kind === 'failed' ? failure.outputFile : undefined), rollbackOutputFile: r?.outputFile };
  });
  await github.postApplyReport({ repo: ctx.repo, number: ctx.number, key: `apply-${plan.id}`, report: { sha: plan.sha, shortSha: shortSha(plan.sha), actor: String(data.actor), projects } });
  for (const report of projects) {
    const p = chosen.find((x) => x.name === report.name)!;
    const [template, conclusion] = APPLY_CHECKS[report.result];
    await ctx.check(`${CHECK_APPLY}: ${p.name}`, plan.sha, 'completed', { template, data: { ...data, ...projectData(p), summaryLine: p.summary?.line, rollback: rollbacks.get(p.name) } }, { checkRunId: p.applyCheckId, conclusion });
  }
  // A plan that changed under its approval is not a failure: it waits for approval again.
  const ok = [...failures.values()].every((f) => f.kind === 'changed');
  const remaining = pending(plan.projects!).length;
  await ctx.check(
    CHECK_APPLY,
    plan.sha,
    ok && remaining === 0 ? 'completed' : ok ? 'queued' : 'completed',
    { template: ok ? (remaining === 0 ? 'checks/apply-done' : 'checks/apply-waiting') : 'checks/applies-failed', data: { ...data, summaryLine: totalSummary(pending(plan.projects!)).line } },
    ok && remaining > 0 ? { checkRunId, actions: ['approve', 'apply'] } : { checkRunId, conclusion: ok ? 'success' : 'failure' },
  );
}

function applyResult(p: ProjectPlan, failure: ApplyFailure | undefined, rollback: Rollback | undefined): ProjectApplyReport['result'] {
  const appliedThenReverted = !failure && rollback;
  if (appliedThenReverted) return rollback.status === 'rolled-back' ? 'reverted' : 'revert-failed';
  if (rollback) return rollback.status === 'rolled-back' ? 'rolled-back' : 'rollback-failed';
  if (p.status === 'applied') return 'applied';
  if (failure?.kind === 'changed') return 'not-applied';
  return failure ? 'failed' : 'skipped';
}

const APPLY_CHECKS: Record<ProjectApplyReport['result'], [string, Conclusion]> = {
  applied: ['checks/apply-done', 'success'],
  reverted: ['checks/apply-project-rolled-back', 'neutral'],
  'revert-failed': ['checks/apply-project-rollback-failed', 'failure'],
  failed: ['checks/apply-project-failed', 'failure'],
  'rolled-back': ['checks/apply-project-rolled-back', 'failure'],
  'rollback-failed': ['checks/apply-project-rollback-failed', 'failure'],
  skipped: ['checks/apply-project-skipped', 'skipped'],
  'not-applied': ['checks/apply-project-changed', 'neutral'],
};

/** A downstream whose fresh plan differs from the approved one becomes a plan to approve again. */
async function askAgainForChangedPlans(ctx: ProjectRunContext, plan: PlanRecord, failures: Map<string, ApplyFailure>): Promise<void> {
  for (const [name, failure] of failures) {
    if (failure.kind !== 'changed') continue;
    const p = plan.projects!.find((x) => x.name === name)!;
    Object.assign(p, {
      status: 'planned',
      plannedAt: (plan.clock = (plan.clock ?? 0) + 1),
      label: failure.label,
      planFile: failure.fresh.planFile,
      planSha256: failure.fresh.planSha256,
      summary: failure.fresh.summary,
      planTextFile: failure.fresh.planTextFile,
      showJsonFile: failure.fresh.showJsonFile,
    });
    ctx.s.approvals = ctx.s.approvals.filter((a) => !(a.planId === plan.id && a.project === name));
    await ctx.post(
      `changed-${plan.id}-${name}`,
      'replies/plan-changed-at-apply',
      { shortSha: shortSha(plan.sha), ...projectData(p), changes: failure.comparison.changes, summaryLine: p.summary?.line },
      failure.comparison.diffFile ? { diff: failure.comparison.diffFile, planText: failure.fresh.planTextFile } : { planText: failure.fresh.planTextFile },
    );
  }
}
