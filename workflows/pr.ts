// The PR workflow: one durable run per pull request (id pr:{owner}/{repo}#{number}).
// It owns the PR's state — current plan, its hash, approvals — and reacts to webhook events that
// arrive as signals. The main loop handles events quickly; plans and applies run as background jobs
// so that commands are answered (and pushes cancel a running plan) while terraform works.
// Deterministic only: every side effect is an activity.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RenderRequest, TerraformBinary } from '../shared/activity-contracts.ts';
import type { CommandPermissions, GuardedCommand } from '../activities/repo-config/types.ts';
import type { Permission } from '../activities/github.ts';
import { Saga } from './saga.ts';
import { applier, github, temporalCalls, workspace } from './pr-activities.ts';
import { queueDeploys } from './deploy-queue.ts';
import type { DeployTracking, PlanRecord, PrState } from './pr-state.ts';
import { applyProjects, planProjects, refuseBase, type ProjectRunContext } from './pr-projects.ts';
import { approvedForDeploy, mustApplyFirst, pending, type ProjectPlan } from './projects.ts';
import { DEFAULT_REQUIREMENTS, evaluate, factsNeeded, requirementsFrom, type RequirementResult } from './requirements.ts';
import { createLockClient } from './lock-client.ts';
import { defaultBranchPolicy, judgeActor, permissionsAt } from './authorize.ts';
import { CHECK_APPLY, CHECK_PLAN, PR_EVENT_SIGNAL, commandKey, type CheckAction, type PrEvent, type PrWorkflowInput, type PlanStatus, lockWorkflowId, type PrOutcome, prEventSignal, prStateQuery } from '../shared/contracts.ts';


type RollbackStatus = 'rolled-back' | 'rollback-failed' | 'disabled';
interface RollbackReport {
  status: RollbackStatus;
  baseRef: string;
  baseSha?: string;
  outputFile?: string;
  error?: string;
}

interface ApprovedAtMerge {
  name: string;
  planSha: string;
  showJsonFile: string;
  planTextFile: string;
  approvers: string[];
}

/** The single Terraform root this issue supports; the project model (issue 3) replaces it. */
const ROOT_PROJECT = { name: 'default', dir: '.', workspace: 'default', binary: 'terraform' as TerraformBinary };

const SEEN_LIMIT = 500;
/** Logins remembered as answered outsiders / pushers per PR: bounded like `seen`. */
const LOGINS_LIMIT = 200;
const WRITE: Permission[] = ['write', 'admin'];
const RANK: Record<Permission, number> = { none: 0, read: 1, write: 2, admin: 3 };
const sameLogin = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Appends to a bounded list, oldest forgotten first. */
function remember(list: string[], value: string, limit: number): void {
  list.push(value);
  if (list.length > limit) list.splice(0, list.length - limit);
}

/** GitHub timestamps have whole seconds: a command counts as written before `ms` only if its second is earlier. */
const writtenBefore = (createdAt: string | undefined, ms: number | undefined) =>
  createdAt !== undefined && ms !== undefined && Date.parse(createdAt) < Math.floor(ms / 1000) * 1000;

export async function prWorkflow(input: PrWorkflowInput): Promise<PrOutcome> {
  const { repo, number } = input.pr;
  const s: PrState = (input.carried as PrState | undefined) ?? {
    snapshot: input.snapshot,
    queue: [],
    seen: [],
    planSeq: 0,
    approvals: [],
  };

  let job: { kind: 'plan' | 'apply'; sha: string; scope: CancellationScope } | undefined;
  let jobError: unknown;
  const locks = createLockClient({ workflowId: workflowInfo().workflowId, pr: number });
  const rootLockId = lockWorkflowId(repo.owner, repo.name, ROOT_PROJECT.dir, ROOT_PROJECT.workspace);

  /**
   * Takes the project's lock for this PR; false (and the PR told why) when another PR holds it.
   * Recorded before asking, so that close releases it even if the answer is never seen.
   */
  async function takeLock(sha: string, checkRunId: number, data: Record<string, unknown>): Promise<boolean> {
    s.locks ??= [];
    if (!s.locks.includes(rootLockId)) s.locks.push(rootLockId);
    const answer = await CancellationScope.nonCancellable(() => locks.acquire(rootLockId));
    if (answer.granted) return true;
    const lockData = { ...data, holderPr: answer.holder?.pr };
    await CancellationScope.nonCancellable(async () => {
      await post(`plan-${s.planSeq}`, 'replies/locked', lockData);
      await check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-locked', data: lockData }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
    });
    return false;
  }

  async function releaseLocks(): Promise<void> {
    for (const lockId of s.locks ?? []) await locks.release(lockId);
    s.locks = [];
  }

  const handled = (event: PrEvent) => remember((s.handled ??= []), event.deliveryId, SEEN_LIMIT);

  setHandler(prEventSignal, (event) => {
    if (s.seen.includes(event.deliveryId)) return;
    s.seen.push(event.deliveryId);
    if (s.seen.length > SEEN_LIMIT) s.seen.splice(0, s.seen.length - SEEN_LIMIT);
    s.queue.push(event);
    // A plan for an older head is worthless: stop it now rather than when the event is handled (unless the
    // event itself is older than what the workflow knows: a late `opened` must not stop the newer plan).
    const stale = Date.parse(event.type === 'pr-updated' ? (event.pr.updatedAt ?? '') : '') < Date.parse(s.snapshot?.updatedAt ?? '');
    if (event.type === 'pr-updated' && !stale && job?.kind === 'plan' && job.sha !== event.pr.headSha) job.scope.cancel();
  });

  setHandler(prStateQuery, () => ({
    headSha: s.snapshot?.headSha,
    plan: s.plan && {
      id: s.plan.id,
      sha: s.plan.sha,
      status: s.plan.status,
      summary: s.plan.summary.line,
      planSha256: s.plan.planSha256,
      projects: s.plan.projects?.map((p) => ({ name: p.name, status: p.status, planSha256: p.planSha256 })),
    },
    approvals: s.approvals.map((a) => a.actor),
    job: job?.kind,
    queued: s.queue.length,
    handled: [...(s.handled ?? [])],
    deploys: s.deploys?.map((d) => ({ project: d.project, status: d.status })),
  }));

  const shortSha = (sha: string) => sha.slice(0, 7);
  const projectData = { project: ROOT_PROJECT.dir, workspace: ROOT_PROJECT.workspace };

  const post = (key: string, template: string, data: Record<string, unknown>, files?: Record<string, string>) =>
    github.postComment({ repo, number, key, message: { template, data, files } });

  const reply = (deliveryId: string, template: string, data: Record<string, unknown> = {}) =>
    post(`reply-${deliveryId}`, `replies/${template}`, data);

  const check = (
    name: string,
    sha: string,
    status: 'queued' | 'in_progress' | 'completed',
    output: RenderRequest,
    opts: { checkRunId?: number; conclusion?: 'success' | 'failure' | 'neutral' | 'cancelled' | 'skipped'; actions?: CheckAction[] } = {},
  ) => github.upsertCheckRun({ repo, headSha: sha, name, status, output, ...opts });

  function startJob(kind: 'plan' | 'apply', sha: string, body: () => Promise<void>): void {
    // Applies run in a non-cancellable scope: nothing may interrupt terraform apply half-way.
    const scope = new CancellationScope({ cancellable: kind === 'plan' });
    job = { kind, sha, scope };
    scope
      .run(body)
      .catch((err) => {
        if (isCancellation(err)) return;
        // A GitHub call that kept failing is logged and the PR keeps its workflow; anything else is a
        // bug, which fails the workflow task so it retries once fixed code is deployed.
        if (err instanceof ActivityFailure) log.error('job failed', { kind, sha, error: failureMessage(err) });
        else jobError = err;
      })
      .finally(() => {
        job = undefined;
      });
  }

  // ---- plan -------------------------------------------------------------------------------------

  /** Marks the current plan as outdated: approvals go, its comment is minimized, its apply check closes. */
  async function retirePlan(reason: 'superseded' | 'discarded' | 'closed'): Promise<void> {
    const plan = s.plan;
    s.approvals = [];
    if (!plan || plan.status === 'applying') return;
    if (plan.status === 'ready') {
      plan.status = 'discarded';
      // A plan approved to deploy after merge keeps its green check when the PR merges.
      if (plan.applyCheckId && !(reason === 'closed' && plan.awaitingMerge)) {
        await check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-retired', data: { reason, merged: reason === 'closed' && s.closed?.merged, deploysAfterMerge: plan.projects?.some((p) => p.apply === 'afterMerge') } }, {
          checkRunId: plan.applyCheckId,
          conclusion: reason === 'superseded' ? 'cancelled' : 'neutral',
        });
      }
    }
    if (reason !== 'closed' && plan.commentNodeIds.length) {
      await github.minimizeComments({ repo, nodeIds: plan.commentNodeIds });
      plan.commentNodeIds = [];
    }
  }

  const projectRuns: ProjectRunContext = { repo, number, s, locks, post, check, retirePlan, failureMessage, failureType };

  function startPlan(sha: string, scope?: PrState['wantPlanScope']): void {
    const planId = ++s.planSeq;
    startJob('plan', sha, async () => {
      // Versioned: runs started before the project model plan their single root project below.
      if (patched('multi-project')) {
        await planProjects(projectRuns, planId, sha, scope ?? {}, scope?.extraArgs ?? []);
        // The plan's comment and checks are out: approvals must come after this.
        if (s.plan?.id === planId) s.plan.postedAt ??= Date.now();
        return;
      }
      const snapshot = s.snapshot!;
      const data = { ...projectData, sha, shortSha: shortSha(sha) };
      const checkRunId = await check(CHECK_PLAN, sha, 'in_progress', { template: 'checks/plan-running', data });
      // Which step an unexpected failure interrupted, for the error comment.
      let stage: 'checkout' | 'plan' | 'report' = 'checkout';
      try {
        // Versioned: runs recorded before project locks existed replay without them.
        if (patched('project-locks') && !(await takeLock(sha, checkRunId, data))) return;
        const checkout = await workspace.selectProjects({
          repo,
          prNumber: number,
          cloneUrl: snapshot.headCloneUrl,
          sha,
          pr: { baseBranch: snapshot.baseRef, labels: snapshot.labels ?? [] },
        });
        // An invalid .terrapin.yml stops the plan; the next push reads it again.
        if (checkout.configErrors?.length && patched('config-errors-fail-plan')) {
          const errors = checkout.configErrors;
          await CancellationScope.nonCancellable(async () => {
            await post(`plan-${planId}`, 'config-error', { ...data, errors });
            await check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-config-error', data: { ...data, count: errors.length } }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
          });
          return;
        }
        stage = 'plan';
        const result = await workspace.plan({
          workDir: checkout.workDir,
          projectDir: ROOT_PROJECT.dir,
          workspace: ROOT_PROJECT.workspace,
          binary: ROOT_PROJECT.binary,
        });
        stage = 'report';
        if (!result.ok) {
          await CancellationScope.nonCancellable(async () => {
            await post(`plan-${planId}`, 'plan-error', { ...data, step: result.step, exitCode: result.exitCode }, { output: result.outputFile });
            await check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-failed', data }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
          });
          return;
        }
        // From here on the plan is reported even if a newer push arrives meanwhile: it is already done.
        await CancellationScope.nonCancellable(async () => {
          const comment = await post(
            `plan-${planId}`,
            'plan',
            { ...data, summaryLine: result.summary.line, hasChanges: result.summary.hasChanges },
            { planText: result.planTextFile },
          );
          await retirePlan('superseded');
          const plan: PlanRecord = {
            id: planId,
            sha,
            workDir: checkout.workDir,
            planFile: result.planFile,
            planSha256: result.planSha256,
            summary: result.summary,
            onFailure: checkout.onFailure,
            commentNodeIds: comment.nodeIds,
            status: 'ready',
            requirements: checkout.applyRequirements,
          };
          const summaryData = { ...data, summaryLine: result.summary.line };
          await check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-done', data: summaryData }, { checkRunId, conclusion: 'success', actions: ['replan'] });
          plan.applyCheckId = result.summary.hasChanges
            ? await check(CHECK_APPLY, sha, 'queued', { template: 'checks/apply-waiting', data: summaryData }, { actions: ['approve', 'apply'] })
            : await check(CHECK_APPLY, sha, 'completed', { template: 'checks/apply-nothing', data: summaryData }, { conclusion: 'success' });
          // Approvable only once every surface shows it: a plan whose reporting failed is not.
          plan.postedAt = Date.now();
          s.plan = plan;
        });
      } catch (err) {
        await CancellationScope.nonCancellable(async () => {
          if (isCancellation(err)) {
            await check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-cancelled', data }, { checkRunId, conclusion: 'cancelled', actions: ['replan'] });
            return;
          }
          // git, terraform or GitHub kept failing (after retries): say so where the user is.
          await post(`plan-${planId}`, 'plan-error', { ...data, step: stage, error: failureMessage(err) });
          await check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-failed', data }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
        });
        if (isCancellation(err)) throw err;
      }
    });
  }

  // ---- apply ------------------------------------------------------------------------------------

  async function rollbackToBase(): Promise<RollbackReport> {
    // The base branch head, not the merge-base: it is what the base branch describes now, including
    // changes merged (and applied) since this PR branched off. Rolling back to the merge-base would
    // undo those.
    const baseRef = s.snapshot!.baseRef;
    const checkout = await workspace.checkout({ repo, prNumber: number, cloneUrl: repo.cloneUrl, branch: baseRef });
    const target = { workDir: checkout.workDir, projectDir: ROOT_PROJECT.dir, workspace: ROOT_PROJECT.workspace, binary: ROOT_PROJECT.binary };
    const plan = await workspace.plan(target);
    if (!plan.ok) return { status: 'rollback-failed', baseRef, baseSha: checkout.sha, outputFile: plan.outputFile };
    const applied = await applier.apply({ ...target, planFile: plan.planFile, expectedSha256: plan.planSha256 });
    return { status: applied.ok ? 'rolled-back' : 'rollback-failed', baseRef, baseSha: checkout.sha, outputFile: applied.outputFile };
  }

  function startApply(plan: PlanRecord, actor: string): void {
    startJob('apply', plan.sha, async () => {
      plan.status = 'applying';
      const data = { ...projectData, sha: plan.sha, shortSha: shortSha(plan.sha), summaryLine: plan.summary.line, actor };
      const checkRunId = await check(CHECK_APPLY, plan.sha, 'in_progress', { template: 'checks/apply-running', data }, { checkRunId: plan.applyCheckId });
      const saga = new Saga<RollbackReport>();
      if (plan.onFailure === 'rollback') {
        saga.add('rollback to base', () =>
          rollbackToBase().catch((err) => ({ status: 'rollback-failed' as const, baseRef: s.snapshot!.baseRef, error: failureMessage(err) })),
        );
      }
      let applied;
      try {
        applied = await applier.apply({
          workDir: plan.workDir,
          projectDir: ROOT_PROJECT.dir,
          workspace: ROOT_PROJECT.workspace,
          binary: ROOT_PROJECT.binary,
          planFile: plan.planFile,
          expectedSha256: plan.planSha256,
        });
      } catch (err) {
        const type = failureType(err);
        if (type === 'PlanMissing' || type === 'PlanMismatch') {
          // Never apply something unreviewed: throw the plan away, re-plan, ask for approval again.
          plan.status = 'discarded';
          s.approvals = [];
          await post(`apply-${plan.id}`, 'replies/plan-stale', { ...data, reason: type === 'PlanMissing' ? 'missing' : 'changed' });
          await check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-stale', data }, { checkRunId, conclusion: 'failure' });
          if (s.snapshot?.headSha === plan.sha) s.wantPlan = plan.sha;
          return;
        }
        // The worker died or timed out inside terraform apply: the outcome is unknown. Do not retry,
        // do not compensate blindly — a human looks at the state first.
        plan.status = 'unknown';
        await post(`apply-${plan.id}`, 'apply', { ...data, outcome: 'unknown', error: failureMessage(err) });
        await check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-unknown', data }, { checkRunId, conclusion: 'failure' });
        return;
      }
      if (applied.ok) {
        plan.status = 'applied';
        await post(`apply-${plan.id}`, 'apply', { ...data, outcome: 'applied' }, { output: applied.outputFile });
        await check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-done', data }, { checkRunId, conclusion: 'success' });
        return;
      }
      plan.status = 'apply-failed';
      const [compensation] = await saga.compensate();
      const rollback: RollbackReport = compensation?.result ?? {
        status: 'disabled',
        baseRef: s.snapshot!.baseRef,
      };
      const files: Record<string, string> = { output: applied.outputFile };
      if (rollback.outputFile) files.rollbackOutput = rollback.outputFile;
      const rollbackData = { ...rollback, shortBaseSha: rollback.baseSha ? shortSha(rollback.baseSha) : undefined };
      await post(`apply-${plan.id}`, 'apply', { ...data, outcome: 'failed', rollback: rollbackData }, files);
      await check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-failed', data: { ...data, rollback: rollbackData } }, { checkRunId, conclusion: 'failure' });
    });
  }

  // ---- commands ---------------------------------------------------------------------------------

  /** The permission of the event's actor, asked once per event (the outsider gate and the rules share it). */
  let eventPermission: { actor: string; permission: Permission } | undefined;
  async function permissionOf(actor: string): Promise<Permission> {
    if (eventPermission?.actor === actor) return eventPermission.permission;
    const permission = await github.getPermission({ repo, login: actor });
    eventPermission = { actor, permission };
    return permission;
  }

  const hasWrite = async (actor: string) => WRITE.includes(await permissionOf(actor));

  /**
   * A comment or review counts once, by its id: `X-GitHub-Delivery` is unsigned, so a captured signed
   * body re-sent with a new delivery id must do nothing more. False for a command already handled.
   */
  function countsOnce(event: PrEvent): boolean {
    const key = commandKey(event);
    if (!key) return true;
    s.commandKeys ??= [];
    // Versioned where it matters only: runs recorded before this never saw a repeated id.
    if (s.commandKeys.includes(key) && patched('command-counts-once')) {
      log.info('command already handled; ignored', { key, deliveryId: event.deliveryId });
      return false;
    }
    remember(s.commandKeys, key, SEEN_LIMIT);
    return true;
  }

  /**
   * On public repositories anyone can comment. Someone who may run no command at all is answered once per
   * PR and then ignored, gets nothing (not even 👀) for words that are no command, and nothing runs: an
   * outsider cannot make the bot spend the installation's rate limit. True when the event goes no further.
   */
  async function turnedAway(event: Extract<PrEvent, { type: 'command' | 'bad-command' }>): Promise<boolean> {
    // Versioned: runs recorded before this reacted to every command at once.
    if (!patched('outsider-gate')) return false;
    const { actor } = event;
    const permission = await permissionOf(actor);
    if (WRITE.includes(permission)) return false;
    // A reader may still be let in by a rule that asks for read only.
    // The reviewed rules (the default branch's), as for the command itself.
    const lowest = permission === 'none' ? 'write' : lowestLevel((await commandPolicy()).rules);
    if (RANK[permission] >= RANK[lowest]) return false;
    s.outsidersAnswered ??= [];
    if (event.type === 'bad-command' || s.outsidersAnswered.some((l) => sameLogin(l, actor))) {
      log.info('command from someone who may run none; ignored', { actor, deliveryId: event.deliveryId });
      return true;
    }
    remember(s.outsidersAnswered, actor, LOGINS_LIMIT);
    if (event.command.name === 'help') await reply(event.deliveryId, 'help', {});
    else await reply(event.deliveryId, 'not-allowed', { actor, command: event.command.name, required: lowest, outsider: true });
    return true;
  }

  /**
   * Why the actor counts as an author though they did not open the PR: they pushed to its head, or wrote
   * or committed one of its commits (GitHub's "most recent reviewable push" rule, and more). None may approve.
   */
  async function authorshipOf(actor: string): Promise<'pushed' | 'committed' | undefined> {
    // Versioned: runs recorded before this knew only the PR's opener as its author.
    if (!patched('author-set')) return undefined;
    if ((s.pushers ?? []).some((l) => sameLogin(l, actor))) return 'pushed';
    const logins = await github.pullRequestCommitLogins({ repo, number });
    return logins.some((l) => sameLogin(l, actor)) ? 'committed' : undefined;
  }

  /** The opener and whoever pushed to the head: the authors a deploy of the merge knows without asking GitHub. */
  const knownAuthors = () => [s.snapshot!.author, ...(s.pushers ?? []).filter((l) => !sameLogin(l, s.snapshot!.author))];

  /** A button on the check run of another commit than the current plan's does nothing (replied why). */
  async function buttonOutdated(event: Extract<PrEvent, { type: 'command' }>): Promise<boolean> {
    const sha = event.checkHeadSha;
    if (event.source !== 'button' || !sha || sha === s.snapshot!.headSha || !patched('button-on-plan-commit')) return false;
    const button = event.command.name === 'approve' ? 'Approve' : 'Apply';
    await reply(event.deliveryId, 'button-outdated', { actor: event.actor, button, command: event.command.name, shortSha: shortSha(sha), currentShortSha: s.plan?.sha === s.snapshot!.headSha ? shortSha(s.plan.sha) : undefined });
    return true;
  }

  /** A command written before the plan was posted never saw it: it neither approves nor applies it (replied why). */
  async function predatesPlan(event: Extract<PrEvent, { type: 'command' }>, plan: PlanRecord): Promise<boolean> {
    if (!writtenBefore(event.createdAt, plan.postedAt) || !patched('approval-after-plan')) return false;
    await reply(event.deliveryId, 'approval-outdated', { actor: event.actor, command: event.command.name, review: event.source === 'review', shortSha: shortSha(plan.sha) });
    return true;
  }

  /**
   * Whether the actor may run the command under `permissions` in the base branch's .terrapin.yml (the PR's
   * own copy could say anything); replies why not.
   */
  async function authorized(command: GuardedCommand, actor: string, deliveryId: string): Promise<boolean> {
    const author = s.snapshot!.author;
    // Versioned: runs recorded before configurable permissions asked for write and, to approve, not the author.
    if (!patched('command-permissions')) {
      if (!(await hasWrite(actor))) {
        await reply(deliveryId, 'not-allowed', { actor, command, required: 'write' });
        return false;
      }
      if (command === 'approve' && actor === author) {
        await reply(deliveryId, 'approve-own-pr', { actor });
        return false;
      }
      return true;
    }
    const policy = await commandPolicy();
    if (!policy.baseAllowed) {
      await refuseBase(projectRuns, `reply-${deliveryId}`, s.snapshot!.headSha, policy.refusal!, 'command');
      return false;
    }
    const rule = policy.rules[command];
    const verdict = await judgeActor(repo, rule, { login: actor, isAuthor: actor === author, number, headSha: s.snapshot!.headSha, baseRef: s.snapshot!.baseRef, permission: await permissionOf(actor) });
    if (verdict.allowed) {
      const authorship = rule.allowAuthor ? undefined : await authorshipOf(actor);
      if (!authorship) return true;
      if (command === 'approve') await reply(deliveryId, 'approve-own-commits', { actor, pushed: authorship === 'pushed' });
      else await reply(deliveryId, 'not-for-author', { actor, command });
      return false;
    }
    if (verdict.because === 'level') await reply(deliveryId, 'not-allowed', { actor, command, required: verdict.required });
    else if (verdict.because === 'not-listed') await reply(deliveryId, 'not-listed', { actor, command, users: verdict.users, teams: verdict.teams, baseRef: s.snapshot!.baseRef });
    else if (command === 'approve') await reply(deliveryId, 'approve-own-pr', { actor });
    else await reply(deliveryId, 'not-for-author', { actor, command });
    return false;
  }

  /**
   * The command permissions of the default branch's .terrapin.yml as it is now, and whether this PR's
   * base may be acted on. Versioned: runs recorded before read the PR's chosen base commit.
   */
  async function commandPolicy(): Promise<{ rules: CommandPermissions; baseAllowed: boolean; refusal?: Awaited<ReturnType<typeof defaultBranchPolicy>> }> {
    if (!patched('policy-from-default-branch')) return { rules: await basePermissions(), baseAllowed: true };
    const snapshot = s.snapshot!;
    const policy = await defaultBranchPolicy(repo, number, { baseBranch: snapshot.baseRef, labels: snapshot.labels ?? [] });
    s.permissions = { baseSha: policy.sha, rules: policy.permissions };
    return { rules: policy.permissions, baseAllowed: policy.baseAllowed, refusal: policy };
  }

  /** The base branch's command permissions, read once per base commit (defaults when its file is broken). */
  async function basePermissions(): Promise<CommandPermissions> {
    const baseSha = s.snapshot!.baseSha;
    if (s.permissions?.baseSha !== baseSha) {
      s.permissions = { baseSha, rules: await permissionsAt(repo, baseSha, number) };
    }
    return s.permissions.rules;
  }

  /** The plan a command acts on, or the reason there is none (already replied). */
  async function currentPlan(deliveryId: string, command: string): Promise<PlanRecord | undefined> {
    if (job) {
      await reply(deliveryId, 'busy', { command, job: job.kind });
      return undefined;
    }
    const plan = s.plan;
    if (plan?.status === 'applied' && plan.sha === s.snapshot?.headSha) {
      await reply(deliveryId, 'already-applied', { command, shortSha: shortSha(plan.sha) });
      return undefined;
    }
    if (!plan || plan.status !== 'ready' || plan.sha !== s.snapshot?.headSha) {
      await reply(deliveryId, 'no-plan', { command });
      return undefined;
    }
    if (!plan.summary.hasChanges) {
      await reply(deliveryId, 'nothing-to-apply', { command });
      return undefined;
    }
    return plan;
  }

  async function onApprove(event: Extract<PrEvent, { type: 'command' }>): Promise<void> {
    const { actor, deliveryId } = event;
    const snapshot = s.snapshot!;
    if (event.source === 'review' && event.reviewCommitSha && event.reviewCommitSha !== snapshot.headSha) {
      await reply(deliveryId, 'review-outdated', { actor, shortSha: shortSha(event.reviewCommitSha) });
      return;
    }
    if (await buttonOutdated(event)) return;
    if (!(await authorized('approve', actor, deliveryId))) return;
    const plan = await currentPlan(deliveryId, 'approve');
    if (!plan || (await predatesPlan(event, plan))) return;
    if (plan.projects) {
      const chosen = await chosenProjects(plan, event, 'approve');
      if (!chosen) return;
      for (const p of chosen) {
        if (!s.approvals.some((a) => a.actor === actor && a.planId === plan.id && a.project === p.name)) {
          s.approvals.push({ actor, project: p.name, planId: plan.id, sha: plan.sha, planSha256: p.planSha256! });
        }
      }
      await applyWhenReady(plan, chosen, event, true);
      return;
    }
    if (!s.approvals.some((a) => a.actor === actor && a.planId === plan.id)) {
      s.approvals.push({ actor, planId: plan.id, sha: plan.sha, planSha256: plan.planSha256 });
    }
    // Versioned: runs recorded before apply requirements applied on the first approval.
    if (patched('apply-requirements')) {
      const unmet = await unmetRequirements(plan);
      if (unmet.length > 0) {
        await reply(deliveryId, 'requirements-unmet', { approvalRecorded: true, actor, shortSha: shortSha(plan.sha), unmet });
        return;
      }
    }
    // Default policy: the approval that meets the requirements applies the plan.
    startApply(plan, actor);
  }

  /** This plan's apply requirements that are not met now; GitHub is asked only for what they read. */
  async function unmetRequirements(plan: PlanRecord, project?: ProjectPlan): Promise<RequirementResult[]> {
    const config = (project ? project.requirements : plan.requirements) ?? DEFAULT_REQUIREMENTS;
    const hash = project ? project.planSha256 : plan.planSha256;
    const approvers = s.approvals
      .filter((a) => a.planId === plan.id && a.planSha256 === hash && (!project || a.project === project.name))
      .map((a) => a.actor);
    const needed = factsNeeded(config);
    const teamApprovers = needed.teams.length > 0 ? approvers : [];
    const facts =
      needed.mergeable || needed.divergence || teamApprovers.length > 0
        ? await github.requirementFacts({
            repo,
            number,
            headSha: plan.sha,
            baseRef: s.snapshot!.baseRef,
            mergeable: needed.mergeable,
            divergence: needed.divergence,
            approvers: teamApprovers,
            teams: needed.teams,
          })
        : { mergeable: null, baseSha: '', mergeBaseSha: '', teamsOf: {} as Record<string, string[]> };
    const results = evaluate(requirementsFrom(config), {
      author: s.snapshot!.author,
      approvals: approvers.map((login) => ({ login, teams: facts.teamsOf[login] ?? [] })),
      mergeable: facts.mergeable,
      baseSha: facts.baseSha,
      mergeBaseSha: facts.mergeBaseSha,
      plan: { destroy: (project ? project.summary?.destroy : plan.summary.destroy) ?? 0 },
    });
    return results.filter((r) => r.status === 'unmet');
  }

  /** The projects a command names (`-p`), or every project with changes; undefined once it replied why not. */
  async function chosenProjects(plan: PlanRecord, event: Extract<PrEvent, { type: 'command' }>, command: string): Promise<ProjectPlan[] | undefined> {
    const waiting = pending(plan.projects!);
    const name = event.command.project;
    if (name === undefined) {
      if (waiting.length > 0) return waiting;
      await reply(event.deliveryId, 'nothing-to-apply', { command });
      return undefined;
    }
    const project = waiting.find((p) => p.name === name);
    if (project) return [project];
    await reply(event.deliveryId, 'not-pending', { project: name, command, shortSha: shortSha(plan.sha) });
    return undefined;
  }

  /** Applies the projects once their requirements are met and no upstream of theirs is left behind. */
  async function applyWhenReady(plan: PlanRecord, chosen: ProjectPlan[], event: Extract<PrEvent, { type: 'command' }>, approvalRecorded: boolean): Promise<void> {
    const { actor, deliveryId } = event;
    const names = chosen.map((p) => p.name);
    const order = mustApplyFirst(plan.projects!, names);
    if (order) {
      await reply(deliveryId, 'apply-order', order);
      return;
    }
    const single = plan.projects!.length === 1;
    const unmet: RequirementResult[] = [];
    for (const p of chosen) {
      for (const r of await unmetRequirements(plan, p)) unmet.push(single ? r : { ...r, name: `${p.name}: ${r.name}` });
    }
    if (unmet.length > 0) {
      await reply(deliveryId, 'requirements-unmet', { approvalRecorded, actor, shortSha: shortSha(plan.sha), unmet });
      return;
    }
    // apply: afterMerge — met requirements make the project ready to deploy from the merge commit.
    const later = chosen.filter((p) => p.apply === 'afterMerge');
    if (later.length > 0 && patched('apply-after-merge')) {
      await approveForMerge(plan, later, actor, deliveryId);
      chosen = chosen.filter((p) => p.apply !== 'afterMerge');
      names.splice(0, names.length, ...chosen.map((p) => p.name));
      if (chosen.length === 0) return;
    }
    // lock: onApply — the project is locked when it is about to apply, not when it is planned.
    for (const p of chosen.filter((x) => x.lock === 'onApply')) {
      const lockId = lockWorkflowId(repo.owner, repo.name, p.dir, p.workspace);
      s.locks ??= [];
      if (!s.locks.includes(lockId)) s.locks.push(lockId);
      const answer = await locks.acquire(lockId);
      if (!answer.granted) {
        await reply(deliveryId, 'locked-apply', { name: p.name, project: p.dir, workspace: p.workspace, holderPr: answer.holder?.pr });
        return;
      }
    }
    startJob('apply', plan.sha, () => applyProjects(projectRuns, plan, names, actor));
  }

  /** Marks `apply: afterMerge` projects approved: their apply checks pass, and they deploy once merged. */
  async function approveForMerge(plan: PlanRecord, projects: ProjectPlan[], actor: string, deliveryId: string): Promise<void> {
    const single = plan.projects!.length === 1;
    const data = { sha: plan.sha, shortSha: shortSha(plan.sha), actor, names: projects.map((p) => p.name) };
    for (const p of projects) {
      p.status = 'approved';
      if (!single) await check(`${CHECK_APPLY}: ${p.name}`, plan.sha, 'completed', { template: 'checks/apply-after-merge', data: { ...data, names: [p.name] } }, { conclusion: 'success' });
    }
    if (pending(plan.projects!).length === 0) {
      await check(CHECK_APPLY, plan.sha, 'completed', { template: 'checks/apply-after-merge', data: { ...data, names: approvedForDeploy(plan.projects!).map((p) => p.name) } }, { checkRunId: plan.applyCheckId, conclusion: 'success' });
      plan.awaitingMerge = true;
    }
    await reply(deliveryId, 'approved-after-merge', data);
  }

  async function onApply(event: Extract<PrEvent, { type: 'command' }>): Promise<void> {
    const { actor, deliveryId } = event;
    if (await buttonOutdated(event)) return;
    if (!(await authorized('apply', actor, deliveryId))) return;
    const plan = await currentPlan(deliveryId, 'apply');
    if (!plan || (await predatesPlan(event, plan))) return;
    if (plan.projects) {
      // apply: afterMerge projects (approved or not) are applied by the merge, never by `/apply`.
      const named = (p: ProjectPlan) => !event.command.project || p.name === event.command.project;
      const later = plan.projects.filter((p) => p.apply === 'afterMerge' && (p.status === 'planned' || p.status === 'approved') && named(p));
      if (later.length > 0 && patched('apply-after-merge')) {
        await reply(deliveryId, 'apply-after-merge', { names: later.map((p) => p.name), shortSha: shortSha(plan.sha) });
        if (!pending(plan.projects).some((p) => p.apply !== 'afterMerge' && named(p))) return;
      }
      const chosen = await chosenProjects(plan, event, 'apply');
      if (chosen) await applyWhenReady(plan, chosen.filter((p) => !later.includes(p)), event, false);
      return;
    }
    if (patched('apply-requirements')) {
      const unmet = await unmetRequirements(plan);
      if (unmet.length > 0) {
        await reply(deliveryId, 'requirements-unmet', { actor, shortSha: shortSha(plan.sha), unmet });
        return;
      }
      startApply(plan, actor);
      return;
    }
    const approved = s.approvals.some((a) => a.planId === plan.id && a.planSha256 === plan.planSha256);
    if (!approved) {
      await reply(deliveryId, 'not-approved', { actor, shortSha: shortSha(plan.sha), author: s.snapshot!.author });
      return;
    }
    startApply(plan, actor);
  }

  /** `/drift [-p project]`: checks the named project, or this PR's projects, at the default branch now. */
  async function onDrift(event: Extract<PrEvent, { type: 'command' }>): Promise<void> {
    const { actor, deliveryId, command } = event;
    if (!(await hasWrite(actor))) {
      await reply(deliveryId, 'not-allowed', { actor, command: 'drift', required: 'write' });
      return;
    }
    const projects = command.project ? [command.project] : (s.plan?.projects ?? []).map((p) => p.name);
    if (projects.length === 0) {
      await reply(deliveryId, 'drift-needs-project', {});
      return;
    }
    const runs = await github.startDriftRuns({ repo, projects, actor });
    await reply(deliveryId, 'drift-started', runs);
  }

  async function onCommand(event: Extract<PrEvent, { type: 'command' }>): Promise<void> {
    const { actor, deliveryId, command } = event;
    if (await turnedAway(event)) return;
    if (event.commentId) await github.reactToComment({ repo, commentId: event.commentId });
    const snapshot = s.snapshot!;
    if (snapshot.state === 'closed') {
      // A drift check runs at the default branch: a closed PR names its projects as well as an open one.
      if (command.name === 'drift' && patched('drift-on-closed-pr')) return onDrift(event);
      await reply(deliveryId, 'pr-closed', { command: command.name });
      return;
    }
    switch (command.name) {
      case 'help':
        await reply(deliveryId, 'help', {});
        return;
      case 'drift':
        // Versioned: runs recorded before drift checks answered that they were not available.
        if (!patched('drift-runs')) {
          await reply(deliveryId, 'drift-unavailable', {});
          return;
        }
        return onDrift(event);
      case 'approve':
        return onApprove(event);
      case 'apply':
        return onApply(event);
    }
    if (command.name === 'plan' || command.name === 'unlock') {
      if (!(await authorized(command.name, actor, deliveryId))) return;
    } else if (!(await hasWrite(actor))) {
      await reply(deliveryId, 'not-allowed', { actor, command: command.name, required: 'write' });
      return;
    }
    if (command.name === 'plan') {
      if (job?.kind === 'plan') job.scope.cancel();
      s.wantPlan = snapshot.headSha;
      const { project, dir, workspace: ws, extraArgs } = command;
      s.wantPlanScope = project || dir || extraArgs.length ? { project, dir, workspace: ws, extraArgs } : undefined;
      return;
    }
    if (command.name === 'cancel') {
      s.wantPlan = undefined;
      if (job?.kind === 'plan') job.scope.cancel();
      await reply(deliveryId, 'cancelled', { job: job?.kind });
      return;
    }
    // unlock: discard this PR's plan and release its project locks.
    if (job) {
      await reply(deliveryId, 'busy', { command: 'unlock', job: job.kind });
      return;
    }
    await retirePlan('discarded');
    s.plan = undefined;
    await releaseLocks();
    await workspace.removeWorkDirs({ repo, prNumber: number });
    await reply(deliveryId, 'unlocked', {});
  }

  // ---- events -----------------------------------------------------------------------------------

  async function onEvent(event: PrEvent): Promise<void> {
    eventPermission = undefined;
    if (!countsOnce(event)) return;
    switch (event.type) {
      case 'pr-updated': {
        // Whoever pushed to the head is an author of the change (even when the event itself is late).
        if (event.action === 'opened' || event.action === 'reopened' || event.action === 'synchronize') {
          s.pushers ??= [];
          if (!s.pushers.some((l) => sameLogin(l, event.actor))) remember(s.pushers, event.actor, LOGINS_LIMIT);
        }
        // A delivery older than what the workflow knows (opened arriving after synchronize) changes nothing.
        const known = Date.parse(s.snapshot?.updatedAt ?? '');
        if (Date.parse(event.pr.updatedAt ?? '') < known && patched('ordered-pr-events')) {
          log.info('older pull_request event ignored', { deliveryId: event.deliveryId, action: event.action });
          return;
        }
        s.snapshot = event.pr;
        if (s.plan && s.plan.sha !== event.pr.headSha) await retirePlan('superseded');
        if (job?.kind === 'plan' && job.sha !== event.pr.headSha) job.scope.cancel();
        // Drafts wait until they are ready for review; a later event of the same burst wins.
        const newer = (e: PrEvent) => e.type === 'pr-updated' && !(Date.parse(e.pr.updatedAt ?? '') < Date.parse(event.pr.updatedAt ?? ''));
        const later = s.queue.some(newer);
        s.wantPlan = event.pr.draft || event.action === 'converted_to_draft' || later ? undefined : event.pr.headSha;
        s.wantPlanScope = undefined;
        return;
      }
      case 'pr-closed':
        s.closed = { merged: event.merged, mergeCommitSha: event.mergeCommitSha, actor: event.actor };
        return;
      case 'deploy-status':
        // Only a merged PR's workflow follows deploys; an open one has none.
        return;
      case 'bad-command':
        if (await turnedAway(event)) return;
        await github.reactToComment({ repo, commentId: event.commentId });
        if (event.parse.kind === 'unknown') {
          await reply(event.deliveryId, 'unknown-command', { word: event.parse.word, suggestion: event.parse.suggestion });
        } else {
          await reply(event.deliveryId, 'invalid-command', { command: event.parse.name, error: event.parse.error });
        }
        return;
      case 'command':
        return onCommand(event);
    }
  }

  // ---- main loop --------------------------------------------------------------------------------

  if (!s.snapshot) s.snapshot = await github.getPullRequest({ repo, number });
  // A comment on a closed PR starts a run that no `closed` event will ever end: it answers, then ends
  // (unless the PR is reopened meanwhile).
  const startedClosed = !s.closed && s.snapshot.state === 'closed' && patched('closed-pr-run-ends');
  const idleWhileClosed = () => startedClosed && s.snapshot?.state === 'closed' && s.queue.length === 0 && !job && s.wantPlan === undefined;

  while (!s.closed) {
    await condition(
      () =>
        s.queue.length > 0 ||
        jobError !== undefined ||
        (s.wantPlan !== undefined && !job) ||
        (!job && workflowInfo().continueAsNewSuggested) ||
        idleWhileClosed(),
    );
    if (jobError) throw jobError;
    const event = s.queue.shift();
    if (event) {
      try {
        await onEvent(event);
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        log.error('event handling failed', { type: event.type, deliveryId: event.deliveryId, error: failureMessage(err) });
      }
      handled(event);
    } else if (s.wantPlan !== undefined && !job) {
      const sha = s.wantPlan;
      const scope = s.wantPlanScope;
      s.wantPlan = undefined;
      s.wantPlanScope = undefined;
      startPlan(sha, scope);
    } else if (idleWhileClosed()) {
      break;
    } else {
      log.info('continuing as new', { queued: s.queue.length });
      await continueAsNew<typeof prWorkflow>({ pr: input.pr, carried: s });
    }
  }

  if (!s.closed) return { merged: false, closedBefore: true };

  // Closed or merged: stop planning, let a running apply finish, then clean up. A run continued as new
  // while following deploys did all this already.
  if (!s.deploys) {
    if (job?.kind === 'plan') job.scope.cancel();
    await condition(() => !job);
    if (jobError) throw jobError;
    // Read before retiring the plan, which forgets its approvals.
    const approved = approvedAtMerge();
    await retirePlan('closed');
    await releaseLocks();
    // Deploys and drift schedules follow the default branch only: a merge into any other branch (even
    // one PRs may target) changes neither. Versioned: runs recorded before deployed any merge.
    const intoDefaultBranch = s.closed.merged && patched('merge-into-default-only') ? await mergedIntoDefaultBranch() : true;
    // A merge is how .terrapin.yml changes land: keep the drift schedules in line with the default branch.
    if (s.closed.merged && intoDefaultBranch && patched('drift-schedule-sync')) {
      try {
        await workspace.syncDriftSchedulesAtHead({ repo });
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        log.error('could not sync drift schedules', { error: failureMessage(err) });
      }
    }
    if (s.closed.merged && intoDefaultBranch && s.closed.mergeCommitSha && patched('deploy-on-merge')) {
      s.deploys = await startDeploys(s.closed.mergeCommitSha, s.closed.actor ?? s.snapshot!.author, approved);
    }
    await workspace.removeWorkDirs({ repo, prNumber: number });
  }
  if (s.deploys?.some((d) => d.status !== 'finished')) await followDeploys();
  return { merged: s.closed.merged, lastPlan: s.plan && { sha: s.plan.sha, status: s.plan.status } };

  // ---- deploys after merge ----------------------------------------------------------------------

  /**
   * Was the PR merged into the repository's default branch? Its base says so, and the merge commit is in
   * the default branch's history (a base changed without an event we saw cannot fool it). Unknown counts
   * as no: nothing deploys.
   */
  async function mergedIntoDefaultBranch(): Promise<boolean> {
    try {
      const baseRef = s.snapshot!.baseRef;
      const policy = await defaultBranchPolicy(repo, number, { baseBranch: baseRef, labels: [] });
      const mergeSha = s.closed?.mergeCommitSha;
      // One history mirror for every PR's merges (not per PR: each is the repository's whole history).
      const reachable =
        !mergeSha || mergeSha === policy.sha || (await workspace.revisionFacts({ repo, project: '_merges', sha: mergeSha, newer: policy.sha })).olderThanNewer === true;
      if (policy.branch === baseRef && reachable) return true;
      log.info('not merged into the default branch: no deploys', { baseRef, defaultBranch: policy.branch, mergeSha });
      return false;
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.error('could not read the default branch', { error: failureMessage(err) });
      return false;
    }
  }

  /**
   * Queues the merge commit on the deploy workflow of every `apply: afterMerge` project it changes, with
   * the plan approved on this PR (kept past the work dir's removal) and the order the projects depend on.
   */
  /** The merged head's `apply: afterMerge` projects approved here, their plan files and approvers. */
  function approvedAtMerge(): ApprovedAtMerge[] {
    const plan = s.plan;
    if (!plan?.projects || plan.sha !== s.snapshot?.headSha) return [];
    return approvedForDeploy(plan.projects).map((p) => ({
      name: p.name,
      planSha: plan.sha,
      showJsonFile: p.showJsonFile!,
      planTextFile: p.planTextFile!,
      approvers: s.approvals.filter((a) => a.planId === plan.id && a.project === p.name).map((a) => a.actor),
    }));
  }

  async function startDeploys(mergeSha: string, actor: string, approved: ApprovedAtMerge[]): Promise<DeployTracking[]> {
    const data = { sha: mergeSha, shortSha: shortSha(mergeSha) };
    try {
      const merged = await workspace.selectProjects({ repo, prNumber: number, cloneUrl: repo.cloneUrl, sha: mergeSha, compareWithParent: true });
      if (merged.configErrors?.length) {
        await post(`deploy-${mergeSha}`, 'deploy/not-queued', { ...data, errors: merged.configErrors });
        return [];
      }
      const names = await queueDeploys(repo, merged.projects ?? [], async (p) => {
        const ok = approved.find((x) => x.name === p.name);
        const kept = ok && (await workspace.keepApprovedPlan({ repo, prNumber: number, project: p.name, sha: ok.planSha, showJsonFile: ok.showJsonFile, planTextFile: ok.planTextFile }));
        return { sha: mergeSha, trigger: 'merge', actor, pr: { number, author: s.snapshot!.author, authors: knownAuthors() }, approved: kept ? { ...kept, approvers: ok!.approvers } : undefined };
      });
      if (names.length > 0) await post(`deploy-${mergeSha}`, 'deploy/queued', { ...data, names });
      return names.map((project) => ({ project, sha: mergeSha, status: 'queued' }));
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.error('could not queue deploys', { error: failureMessage(err) });
      await post(`deploy-${mergeSha}`, 'deploy/not-queued', { ...data, error: failureMessage(err) });
      return [];
    }
  }

  /** Stays reachable while this PR's deploys run: `/approve` on the merged PR goes to a deploy that waits. */
  async function followDeploys(): Promise<void> {
    const deploys = s.deploys!;
    while (deploys.some((d) => d.status !== 'finished')) {
      const more = await condition(() => s.queue.length > 0 || workflowInfo().continueAsNewSuggested, '60 days');
      if (!more) return;
      const event = s.queue.shift();
      if (!event) await continueAsNew<typeof prWorkflow>({ pr: input.pr, carried: s });
      try {
        eventPermission = undefined;
        await onMergedEvent(event!, deploys);
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        log.error('event handling failed', { type: event!.type, deliveryId: event!.deliveryId, error: failureMessage(err) });
      }
      handled(event!);
    }
  }

  async function onMergedEvent(event: PrEvent, deploys: DeployTracking[]): Promise<void> {
    if (event.type === 'deploy-status') {
      const d = deploys.find((x) => x.project === event.project && x.sha === event.sha);
      if (d && d.status !== 'finished') d.status = event.status;
      return;
    }
    if (event.type === 'bad-command') return onEvent(event);
    if (event.type !== 'command' || !countsOnce(event)) return;
    if (await turnedAway(event)) return;
    if (event.commentId) await github.reactToComment({ repo, commentId: event.commentId });
    if (event.command.name === 'drift' && patched('drift-on-closed-pr')) return onDrift(event);
    if (event.command.name !== 'approve') {
      await reply(event.deliveryId, 'pr-closed', { command: event.command.name });
      return;
    }
    const waiting = deploys.filter((d) => d.status === 'waiting' && (!event.command.project || d.project === event.command.project));
    if (waiting.length === 0) {
      await post(`reply-${event.deliveryId}`, 'deploy/nothing-waiting', { actor: event.actor, project: event.command.project });
      return;
    }
    for (const d of waiting) {
      await temporalCalls.enqueueDeploy({ repo, project: d.project, event: { type: 'approve', deliveryId: event.deliveryId, actor: event.actor, sha: d.sha, prNumber: number, ...(event.createdAt ? { createdAt: event.createdAt } : {}) } });
    }
  }
}

/** The lowest permission level any guarded command asks for: below it, someone may run no command. */
function lowestLevel(rules: CommandPermissions): Permission {
  const levels = Object.values(rules).map((r) => r.level);
  return levels.reduce<Permission>((low, level) => (RANK[level] < RANK[low] ? level : low), 'admin');
}

function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
  return undefined;
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
