// Deploys after merge (`apply: afterMerge`): one durable queue per project, id deploy:{owner}/{repo}:{project},
// fed with signalWithStart when a PR merges (or the default branch gets a push, with `deployOnPush`).
// Each revision is planned at its commit and applied only if its resource actions are the ones approved
// on the PR; otherwise the PR is asked for a fresh approval. A revision older than the one deployed is
// skipped; a failed apply compensates by applying the previously deployed revision again.
// One run handles one revision, then continues as new: every deploy is its own run in the history, with
// its own search attributes.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  log,
  makeContinueAsNewFunc,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ApplyResult, OutputInput, PlanResult } from '../shared/activity-contracts.ts';
import type { PlanComparison } from '../activities/plan-compare.ts';
import type { ApplyRequirement, CommandRule, ResolvedProject } from '../activities/repo-config/types.ts';
import { DEFAULT_PERMISSIONS } from './permissions.ts';
import { DEFAULT_REQUIREMENTS, evaluate, factsNeeded, requirementsFrom, type RequirementResult } from './requirements.ts';
import { applier, github, temporalCalls, workspace } from './pr-activities.ts';
import { judgeActor, permissionsAt } from './authorize.ts';
import { searchAttributePairs, type RunRecord } from '../shared/records.ts';
import { CHECK_DEPLOY, DEPLOY_SIGNAL, PR_EVENT_SIGNAL, prWorkflowId, type PrEvent, type RepoRef, type ApprovedPlan, type DeployInput, type DeployOutcome, type DeployRevision, type DeployState, type DeployStatus, deploySignal, deployStateQuery } from '../shared/contracts.ts';




const KEEP = 100;
/** Quiet time before a deploy starts, so that merges made together are taken in merge order. */
const SETTLE = '3 seconds';
/** How long a revision waits for a fresh approval before it lapses. */
const APPROVAL_WINDOW = '30 days';
const OK: readonly DeployOutcome[] = ['deployed', 'unchanged'];

const CONCLUSION: Record<DeployOutcome, 'success' | 'failure' | 'skipped' | 'cancelled'> = {
  deployed: 'success',
  unchanged: 'success',
  failed: 'failure',
  'rolled-back': 'failure',
  'rollback-failed': 'failure',
  unknown: 'failure',
  skipped: 'skipped',
  superseded: 'skipped',
  expired: 'cancelled',
};

export async function deployWorkflow({ repo, project, carried }: DeployInput): Promise<void> {
  const s: DeployState = carried ?? { queue: [], seen: [], upstreamDone: [], approvals: [], history: [] };
  let current: DeployStatus['current'];
  let recorded = false;

  const remember = (id: string) => {
    s.seen.push(id);
    if (s.seen.length > KEEP * 5) s.seen.splice(0, s.seen.length - KEEP * 5);
  };
  setHandler(deploySignal, (event) => {
    if (event.type === 'revision') {
      if (s.seen.includes(`rev:${event.revision.sha}`)) return;
      remember(`rev:${event.revision.sha}`);
      s.queue.push(event.revision);
    } else if (event.type === 'upstream') {
      if (!s.upstreamDone.some((u) => u.sha === event.sha && u.project === event.project)) s.upstreamDone.push({ sha: event.sha, project: event.project, outcome: event.outcome });
      if (s.upstreamDone.length > KEEP) s.upstreamDone.splice(0, s.upstreamDone.length - KEEP);
    } else if (!s.seen.includes(event.deliveryId)) {
      remember(event.deliveryId);
      s.approvals.push(event);
    }
  });
  setHandler(deployStateQuery, () => ({ deployed: s.deployed, queued: s.queue.map((r) => r.sha), current, history: s.history }));

  const comment = (rev: DeployRevision, key: string, template: string, data: Record<string, unknown>, files?: Record<string, string>) =>
    rev.pr ? github.postComment({ repo, number: rev.pr.number, key, message: { template: `deploy/${template}`, data: { project, ...data }, files } }) : undefined;

  /** Approvals nobody is waiting for are answered on their PR, not kept for a later deploy. */
  async function answerStaleApprovals(): Promise<void> {
    for (const a of s.approvals.splice(0)) {
      if (a.prNumber) await github.postComment({ repo, number: a.prNumber, key: `reply-${a.deliveryId}`, message: { template: 'deploy/nothing-waiting', data: { project, actor: a.actor } } });
    }
  }

  for (;;) {
    await condition(() => s.queue.length > 0 || s.approvals.length > 0 || workflowInfo().continueAsNewSuggested);
    // Merges seconds apart can reach the queue in either order: let it settle, then take the oldest.
    let settled = s.queue.length;
    while (settled > 0 && (await condition(() => s.queue.length > settled, SETTLE))) settled = s.queue.length;
    const revision = await takeOldest();
    if (!revision) {
      if (s.approvals.length > 0) {
        await answerStaleApprovals();
        continue;
      }
      break;
    }
    current = { sha: revision.sha, phase: 'starting' };
    const outcome = await deployRevision(revision, (phase) => (current = { sha: revision.sha, phase }));
    s.history.push({ sha: revision.sha, outcome, pr: revision.pr?.number });
    if (s.history.length > KEEP) s.history.splice(0, s.history.length - KEEP);
    current = undefined;
    break;
  }
  // The next run starts with this project's attributes only, not this deploy's sha and outcome.
  const input: DeployInput = { repo, project, carried: s };
  if (recorded) await makeContinueAsNewFunc<typeof deployWorkflow>({ typedSearchAttributes: searchAttributePairs({ repository: `${repo.owner}/${repo.name}`, project }) })(input);
  await continueAsNew<typeof deployWorkflow>(input);

  /** The queued revision that every other queued one contains (merge order on the default branch). */
  async function takeOldest(): Promise<DeployRevision | undefined> {
    let oldest = 0;
    for (let i = 1; i < s.queue.length; i++) {
      const facts = await workspace.revisionFacts({ repo, project, sha: s.queue[i]!.sha, newer: s.queue[oldest]!.sha });
      if (facts.olderThanNewer) oldest = i;
    }
    return s.queue.splice(oldest, 1)[0];
  }

  async function deployRevision(rev: DeployRevision, phase: (p: NonNullable<DeployStatus['current']>['phase']) => void): Promise<DeployOutcome> {
    const { sha } = rev;
    const shortSha = sha.slice(0, 7);
    const checkName = `${CHECK_DEPLOY}: ${project}`;
    const records = await temporalCalls.searchAttributesRegistered();
    const record = (r: RunRecord) => {
      if (!records) return;
      upsertSearchAttributes(searchAttributePairs(r));
      recorded = true;
    };
    record({ repository: `${repo.owner}/${repo.name}`, project, trigger: rev.trigger, actor: rev.actor, headSha: sha, pr: rev.pr?.number, outcome: 'running' });
    const base = { project, sha, shortSha, actor: rev.actor, pr: rev.pr?.number };
    const checkRunId = await github.upsertCheckRun({ repo, headSha: sha, name: checkName, status: 'in_progress', output: { template: 'deploy/check', data: { ...base, state: 'running' } } });

    const finish = async (outcome: DeployOutcome, data: Record<string, unknown> = {}, files?: Record<string, string>): Promise<DeployOutcome> => {
      phase('reporting');
      const d = { ...base, ...data, outcome };
      await comment(rev, `deploy-${project}-${sha}`, 'report', d, files);
      await github.upsertCheckRun({ repo, headSha: sha, name: checkName, checkRunId, status: 'completed', conclusion: CONCLUSION[outcome], output: { template: 'deploy/check', data: { ...d, state: outcome } } });
      record({ outcome });
      for (const downstream of rev.downstreams) {
        await temporalCalls.enqueueDeploy({ repo, project: downstream, event: { type: 'upstream', sha, project, outcome } });
      }
      await tellPr(rev, { status: 'finished', outcome });
      return outcome;
    };

    // Never backwards: a revision the deployed one already contains is skipped.
    const facts = await workspace.revisionFacts({ repo, project, sha, newer: s.deployed });
    if (s.deployed && facts.olderThanNewer) return finish('skipped', { reason: 'older', deployed: s.deployed, shortDeployed: s.deployed.slice(0, 7) });

    if (rev.upstreams.length > 0) {
      phase('waiting-upstream');
      const doneOf = (u: string) => s.upstreamDone.find((x) => x.sha === sha && x.project === u);
      await condition(() => rev.upstreams.every((u) => doneOf(u)));
      const blocked = rev.upstreams.find((u) => !OK.includes(doneOf(u)!.outcome));
      if (blocked) return finish('skipped', { reason: 'upstream', upstream: blocked, upstreamOutcome: doneOf(blocked)!.outcome });
    }

    phase('planning');
    let planned: Extract<PlanResult, { ok: true }>;
    let target: { workDir: string; projectDir: string; workspace: string; binary: ResolvedProject['terraform']; label: string };
    let p: ResolvedProject;
    let all: ResolvedProject[];
    try {
      const checkout = await workspace.selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, sha, listProjects: true });
      if (checkout.configErrors?.length) return finish('failed', { reason: 'config', errors: checkout.configErrors });
      all = checkout.allProjects ?? [];
      const found = all.find((x) => x.name === project);
      if (!found) return finish('skipped', { reason: 'removed' });
      p = found;
      target = { workDir: checkout.workDir, projectDir: p.dir, workspace: p.workspace, binary: p.terraform, label: `deploy-${shortSha}` };
      const result = await workspace.plan({ ...target, inputs: await inputsOf(p, all, target.workDir, target.label), env: p.env, hooks: { before: p.hooks.prePlan, after: p.hooks.postPlan }, hookEnv: hookEnv(p, rev) });
      if (!result.ok) return finish('failed', { reason: 'plan', step: result.step }, { output: result.outputFile });
      planned = result;
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      return finish('failed', { reason: 'plan', error: message(err) });
    }
    if (!planned.summary.hasChanges) {
      s.deployed = sha;
      return finish('unchanged', { summaryLine: planned.summary.line });
    }

    // Apply only what was approved: the same resource actions as the PR's approved plan.
    let approvedBy = rev.approved?.approvers ?? [];
    const comparison = rev.approved ? await compare(rev.approved, planned) : undefined;
    if (!comparison?.same) {
      phase('waiting-approval');
      const answer = await askForApproval(rev, planned, comparison, checkRunId, checkName, facts.parentSha ?? sha);
      if (answer === 'superseded') return finish('superseded', { reason: 'newer' });
      if (answer === 'expired') return finish('expired', { window: APPROVAL_WINDOW });
      approvedBy = answer;
    }

    phase('applying');
    await github.upsertCheckRun({ repo, headSha: sha, name: checkName, checkRunId, status: 'in_progress', output: { template: 'deploy/check', data: { ...base, state: 'applying', summaryLine: planned.summary.line } } });
    const data = { summaryLine: planned.summary.line, approvedBy };
    const inputs = await inputsOf(p, all, target.workDir, target.label);
    let applied: ApplyResult;
    try {
      applied = await applier.apply({ ...target, planFile: planned.planFile, expectedSha256: planned.planSha256, inputs, env: p.env, hooks: { before: p.hooks.preApply, after: p.hooks.postApply }, hookEnv: hookEnv(p, rev) });
    } catch (err) {
      // The outcome is unknown (worker lost, plan file gone or changed): never apply again blindly.
      if (!(err instanceof ActivityFailure)) throw err;
      return finish('unknown', { ...data, error: message(err) });
    }
    if (applied.ok) {
      s.deployed = sha;
      return finish('deployed', data, { output: applied.outputFile });
    }
    // Compensate: the previously deployed revision (or, on a first deploy, the branch before this merge).
    const previous = s.deployed ?? facts.parentSha;
    if (p.onFailure !== 'rollback' || !previous) return finish('failed', { ...data, reason: 'apply', rollback: { status: 'disabled' } }, { output: applied.outputFile });
    const rollback = await rollbackTo(previous, p, all);
    const files: Record<string, string> = { output: applied.outputFile };
    if (rollback.outputFile) files.rollbackOutput = rollback.outputFile;
    const rollbackData = { ...rollback, shortSha: previous.slice(0, 7) };
    return finish(rollback.status, { ...data, reason: 'apply', rollback: rollbackData }, files);
  }

  async function compare(approved: ApprovedPlan, planned: Extract<PlanResult, { ok: true }>): Promise<PlanComparison & { missing?: boolean }> {
    try {
      return await workspace.comparePlans({ approved, current: planned });
    } catch (err) {
      // The approved plan's files are gone (another worker's disk, cleaned up): ask again rather than guess.
      if (!(err instanceof ActivityFailure)) throw err;
      return { same: false, changes: [], missing: true };
    }
  }

  /** Posts the difference and waits for a writer's approval; a newer revision of the queue supersedes it. */
  async function askForApproval(
    rev: DeployRevision,
    planned: Extract<PlanResult, { ok: true }>,
    comparison: (PlanComparison & { missing?: boolean }) | undefined,
    checkRunId: number,
    checkName: string,
    rulesSha: string,
  ): Promise<string[] | 'superseded' | 'expired'> {
    const { sha } = rev;
    const d = { sha, shortSha: sha.slice(0, 7), hadApproval: Boolean(rev.approved), missing: comparison?.missing, changes: comparison?.changes ?? [], summaryLine: planned.summary.line, pr: rev.pr?.number };
    // Approvals sent before this question was asked did not see it.
    await answerStaleApprovals();
    // Approvals written from here on saw the question below (taken before it is posted: when a worker gets
    // to record a later time depends on the worker, not on what the approver saw).
    const askedAt = Date.now();
    const files: Record<string, string> = { planText: planned.planTextFile };
    if (comparison?.diffFile) files.diff = comparison.diffFile;
    await comment(rev, `deploy-ask-${project}-${sha}`, 'needs-approval', d, files);
    // Without a PR (a direct push) the check is where the plan is reviewed and refusals are told.
    const checkFiles = rev.pr ? undefined : { planText: planned.planTextFile };
    const waiting = (data: Record<string, unknown> = {}) =>
      github.upsertCheckRun({ repo, headSha: sha, name: checkName, checkRunId, status: 'queued', output: { template: 'deploy/check', data: { ...d, ...data, state: 'waiting' }, files: checkFiles }, actions: ['approve'] });
    await waiting();
    await tellPr(rev, { status: 'waiting' });
    let checkedQueue = 0;
    /** Who approved this revision so far (each once), and what the approvals are judged by (read once). */
    const approvers: string[] = [];
    let rules: { approve: CommandRule; requirements: readonly ApplyRequirement[] } | undefined;
    let committers: string[] | undefined;
    // Who made the change, none of whom may approve its deploy: the pusher of a direct push, or the PR's
    // opener and pushers (its commits' authors and committers are asked for once someone is allowed).
    const authors = rev.pr ? [rev.pr.author, ...(rev.pr.authors ?? [])] : [rev.actor];
    for (;;) {
      const arrived = await condition(() => s.approvals.length > 0 || s.queue.length > checkedQueue, APPROVAL_WINDOW);
      if (!arrived) return 'expired';
      // A newer merge of this project contains this one: deploying it instead is the only way forward.
      while (s.queue.length > checkedQueue) {
        const next = s.queue[checkedQueue++]!;
        const facts = await workspace.revisionFacts({ repo, project, sha, newer: next.sha });
        if (facts.olderThanNewer) return 'superseded';
      }
      const approval = s.approvals.shift();
      if (!approval) continue;
      const reply = (template: string, data: Record<string, unknown> = {}) =>
        (approval.prNumber ?? rev.pr?.number) ? github.postComment({ repo, number: (approval.prNumber ?? rev.pr?.number)!, key: `reply-${approval.deliveryId}`, message: { template: `deploy/${template}`, data: { project, actor: approval.actor, shortSha: sha.slice(0, 7), ...data } } }) : undefined;
      if ((approval.sha && approval.sha !== sha) || (approval.prNumber && approval.prNumber !== rev.pr?.number)) {
        await reply('nothing-waiting');
        continue;
      }
      // Versioned: deploys recorded before this took the first allowed approval, whatever the requirements.
      if (patched('deploy-apply-requirements')) {
        if (approval.createdAt && Date.parse(approval.createdAt) < Math.floor(askedAt / 1000) * 1000) {
          await reply('approval-outdated');
          continue;
        }
        // The rules in force before this revision (its first parent): a change cannot loosen who approves it.
        rules ??= await rulesAt(rulesSha);
        const isAuthor = authors.some((a) => sameLogin(a, approval.actor));
        let verdict = await judgeActor(repo, rules.approve, { login: approval.actor, isAuthor, number: rev.pr?.number ?? 0, headSha: sha });
        if (verdict.allowed && rev.pr && !rules.approve.allowAuthor) {
          committers ??= await github.pullRequestCommitLogins({ repo, number: rev.pr.number });
          if (committers.some((a) => sameLogin(a, approval.actor))) verdict = { allowed: false, because: 'author' };
        }
        if (!verdict.allowed) {
          const opener = Boolean(rev.pr) && sameLogin(approval.actor, rev.pr!.author);
          const [template, data] =
            verdict.because === 'level' ? ['not-allowed', { required: verdict.required }]
            : verdict.because === 'not-listed' ? ['not-listed', { users: verdict.users, teams: verdict.teams, rulesSha: rulesSha.slice(0, 7) }]
            : opener ? ['own-pr', {}]
            : ['own-change', { pushed: rev.trigger === 'push' }];
          if (approval.prNumber ?? rev.pr?.number) await reply(template, data);
          else await waiting({ refusal: { template: `deploy/${template}`, project, actor: approval.actor, shortSha: sha.slice(0, 7), ...data } });
          continue;
        }
        if (!approvers.some((a) => sameLogin(a, approval.actor))) approvers.push(approval.actor);
        const unmet = await unmetRequirements(rules.requirements, approvers, [...authors, ...(committers ?? [])], rev, planned.summary.destroy);
        if (unmet.length === 0) return approvers;
        const data = { unmet };
        if (approval.prNumber ?? rev.pr?.number) await reply('needs-more', data);
        else await waiting({ refusal: { template: 'deploy/needs-more', project, actor: approval.actor, shortSha: sha.slice(0, 7), ...data } });
        continue;
      }
      // Versioned: deploys recorded before this asked for write and not the PR's author.
      if (patched('deploy-approval-permissions')) {
        // The rule in force before this revision (its first parent): a change cannot loosen who approves it.
        const rule = (await permissionsAt(repo, rulesSha)).approve;
        const isAuthor = Boolean(rev.pr) && approval.actor === rev.pr!.author;
        const verdict = await judgeActor(repo, rule, { login: approval.actor, isAuthor, number: rev.pr?.number ?? 0, headSha: sha });
        if (verdict.allowed) return [approval.actor];
        const [template, data] =
          verdict.because === 'level' ? ['not-allowed', { required: verdict.required }]
          : verdict.because === 'not-listed' ? ['not-listed', { users: verdict.users, teams: verdict.teams, rulesSha: rulesSha.slice(0, 7) }]
          : ['own-pr', {}];
        if (approval.prNumber ?? rev.pr?.number) await reply(template, data);
        else await waiting({ refusal: { template: `deploy/${template}`, project, actor: approval.actor, ...data } });
        continue;
      }
      const permission = await github.getPermission({ repo, login: approval.actor });
      if (permission !== 'write' && permission !== 'admin') {
        await reply('not-allowed', { required: 'write' });
        continue;
      }
      if (rev.pr && approval.actor === rev.pr.author) {
        await reply('own-pr');
        continue;
      }
      return [approval.actor];
    }
  }

  /**
   * `permissions.approve` and this project's apply requirements as the default branch had them at `sha`
   * (defaults when the file is broken or the project is new there).
   */
  async function rulesAt(sha: string): Promise<{ approve: CommandRule; requirements: readonly ApplyRequirement[] }> {
    // The commit's own copy: the default branch as it was then, not as it is now (this very merge changed it).
    const checkout = await workspace.selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, sha, listProjects: true, policyFrom: 'commit' });
    const requirements = checkout.configErrors?.length ? undefined : checkout.allProjects?.find((x) => x.name === project)?.applyRequirements;
    return { approve: (checkout.permissions ?? DEFAULT_PERMISSIONS).approve, requirements: requirements ?? DEFAULT_REQUIREMENTS };
  }

  /**
   * The project's apply requirements over every approval this revision collected. `mergeable` and
   * `undiverged` are about an open PR: a merged commit meets them.
   */
  async function unmetRequirements(config: readonly ApplyRequirement[], approvers: string[], authors: string[], rev: DeployRevision, destroy: number): Promise<RequirementResult[]> {
    const counted = config.filter((r) => r.kind === 'approved' || r.kind === 'destroyNeeds');
    const { teams } = factsNeeded(counted);
    const teamsOf =
      teams.length > 0
        ? (await github.requirementFacts({ repo, number: rev.pr?.number ?? 0, headSha: rev.sha, baseRef: '', mergeable: false, divergence: false, approvers, teams })).teamsOf
        : {};
    const results = evaluate(requirementsFrom(counted), {
      author: rev.pr?.author ?? rev.actor,
      authors,
      approvals: approvers.map((login) => ({ login, teams: teamsOf[login] ?? [] })),
      mergeable: true,
      baseSha: '',
      mergeBaseSha: '',
      plan: { destroy },
    });
    return results.filter((r) => r.status === 'unmet');
  }

  /** Applies `sha` of the project again, with its upstreams' current outputs. */
  async function rollbackTo(sha: string, p: ResolvedProject, all: ResolvedProject[]): Promise<{ status: 'rolled-back' | 'rollback-failed'; sha: string; outputFile?: string; error?: string }> {
    try {
      const checkout = await workspace.selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, sha, listProjects: true });
      const then = checkout.allProjects?.find((x) => x.name === p.name) ?? p;
      const at = { workDir: checkout.workDir, projectDir: then.dir, workspace: then.workspace, binary: then.terraform, label: `rollback-${sha.slice(0, 7)}` };
      const inputs = await inputsOf(then, checkout.allProjects ?? all, at.workDir, at.label);
      const planned = await workspace.plan({ ...at, inputs, env: then.env });
      if (!planned.ok) return { status: 'rollback-failed', sha, outputFile: planned.outputFile };
      const done = await applier.apply({ ...at, planFile: planned.planFile, expectedSha256: planned.planSha256, inputs, env: then.env });
      return { status: done.ok ? 'rolled-back' : 'rollback-failed', sha, outputFile: done.outputFile };
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      return { status: 'rollback-failed', sha, error: message(err) };
    }
  }

  /** Upstream outputs as deployed now (their deploys of this revision finished first). */
  async function inputsOf(p: ResolvedProject, all: ResolvedProject[], workDir: string, label: string): Promise<OutputInput[]> {
    const files = new Map<string, string>();
    const inputs: OutputInput[] = [];
    for (const [variable, ref] of Object.entries(p.inputs)) {
      if (!files.has(ref.project)) {
        const up = all.find((x) => x.name === ref.project);
        if (!up) throw ApplicationFailure.nonRetryable(`input ${variable} reads unknown project ${ref.project}`, 'ConfigInvalid');
        files.set(ref.project, (await workspace.readOutputs({ workDir, projectDir: up.dir, workspace: up.workspace, binary: up.terraform, label: `${label}-in` })).outputsFile);
      }
      inputs.push({ variable, project: ref.project, output: ref.output, outputsFile: files.get(ref.project)! });
    }
    return inputs;
  }

  function hookEnv(p: ResolvedProject, rev: DeployRevision): Record<string, string> {
    return { PROJECT: p.name, DIR: p.dir, WORKSPACE: p.workspace, HEAD_SHA: rev.sha, BASE_SHA: s.deployed ?? '', PR_NUMBER: rev.pr ? String(rev.pr.number) : '' };
  }

  /** Lets the merged PR's workflow route `/approve` here while a deploy waits; it may be gone (push deploys). */
  async function tellPr(rev: DeployRevision, update: { status: 'waiting' | 'finished'; outcome?: DeployOutcome }): Promise<void> {
    if (!rev.pr) return;
    const event: PrEvent = { type: 'deploy-status', deliveryId: `deploy-${project}-${rev.sha}-${update.status}`, project, sha: rev.sha, ...update };
    try {
      await getExternalWorkflowHandle(prWorkflowId(repo.owner, repo.name, rev.pr.number)).signal(PR_EVENT_SIGNAL, event);
    } catch (err) {
      log.info('merged PR workflow not reachable', { pr: rev.pr.number, error: String(err) });
    }
  }
}

const sameLogin = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function message(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
