// Deploys after merge (`apply: afterMerge`): one durable queue per project, id deploy:{owner}/{repo}:{project},
// fed with signalWithStart when a PR merges (or the default branch gets a push, with `deployOnPush`).
// Each revision is planned at its commit and applied only if its resource actions and values are the ones
// approved on the PR; otherwise the PR is asked for a fresh approval (deploy/approval.ts). A revision older than the
// one deployed is skipped; a failed apply compensates by applying the previously deployed revision again.
// Plan, apply and rollback are runs (project-run.ts). One queue run handles one revision, then continues
// as new: every deploy decision is its own run in the history, with its own search attributes. An operator's
// apply or destroy of the project (operator-run.ts) takes a turn between revisions (`hold` … `release`).
import {
  ActivityFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  makeContinueAsNewFunc,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ResolvedProject } from '../shared/config.ts';
import { CHECK_DEPLOY, PR_EVENT_SIGNAL, deployHoldGrantedSignal, deploySignal, deployStateQuery, prWorkflowId } from '../shared/contracts.ts';
import type { ApprovedPlan, DeployInput, DeployOutcome, DeployRevision, DeployState, DeployStatus, PrEvent, RepoRef } from '../shared/contracts.ts';
import { searchAttributePairs, waitingPair, type RunRecord } from '../shared/records.ts';
import { runCounts, type RunInput, type RunResult, type SavedPlan } from '../shared/runs.ts';
import { comparePlans, enqueueDeploy, postComment, revisionFacts, searchAttributesRegistered, selectProjects, upsertCheckRun, workflowRunning } from './activities.ts';
import { APPROVAL_WINDOW, answerStaleApprovals, askForApproval } from './deploy/approval.ts';
import { failureMessage, startRun } from './project-run.ts';

const KEEP = 100;
/** Quiet time before a deploy starts, so that merges made together are taken in merge order. */
const SETTLE = '3 seconds';
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

type Phase = NonNullable<DeployStatus['current']>['phase'];

export async function deployWorkflow({ repo, project, carried }: DeployInput): Promise<void> {
  const s: DeployState = carried ?? { queue: [], seen: [], upstreamDone: [], approvals: [], history: [] };
  let current: DeployStatus['current'];
  let recorded = false;
  /** Turns given back in this run (a release can overtake its hold). */
  const released = new Set<string>();

  const remember = (id: string) => {
    s.seen.push(id);
    if (s.seen.length > KEEP * 5) s.seen.splice(0, s.seen.length - KEEP * 5);
  };
  setHandler(deploySignal, (event) => {
    if (event.type === 'revision') {
      if (s.seen.includes(`rev:${event.revision.sha}`)) return;
      remember(`rev:${event.revision.sha}`);
      s.queue.push(event.revision);
    } else if (event.type === 'hold') {
      s.holds ??= [];
      if (!s.holds.some((h) => h.requestId === event.requestId) && !released.has(event.requestId)) s.holds.push({ holder: event.holder, requestId: event.requestId });
    } else if (event.type === 'release') {
      released.add(event.requestId);
      s.holds = (s.holds ?? []).filter((h) => h.requestId !== event.requestId);
    } else if (event.type === 'upstream') {
      if (!s.upstreamDone.some((u) => u.sha === event.sha && u.project === event.project)) s.upstreamDone.push({ sha: event.sha, project: event.project, outcome: event.outcome });
      if (s.upstreamDone.length > KEEP) s.upstreamDone.splice(0, s.upstreamDone.length - KEEP);
    } else if (!s.seen.includes(event.deliveryId)) {
      remember(event.deliveryId);
      s.approvals.push(event);
    }
  });
  setHandler(deployStateQuery, () => ({ deployed: s.deployed, queued: s.queue.map((r) => r.sha), current, history: s.history, ...(s.holds?.length ? { holds: s.holds.map((h) => h.holder) } : {}) }));

  for (;;) {
    await condition(() => s.queue.length > 0 || s.approvals.length > 0 || (s.holds?.length ?? 0) > 0 || workflowInfo().continueAsNewSuggested);
    // An operator's turn comes between revisions: nothing of this queue runs while it applies.
    if (s.holds?.length) {
      await serveHold(s, released, (c) => (current = c), project);
      current = undefined;
      break;
    }
    // Merges seconds apart can reach the queue in either order: let it settle, then take the oldest.
    let settled = s.queue.length;
    while (settled > 0 && (await condition(() => s.queue.length > settled, SETTLE))) settled = s.queue.length;
    const revision = await takeOldest(repo, project, s);
    if (!revision) {
      if (s.approvals.length === 0) break;
      await answerStaleApprovals(s, repo, project);
      continue;
    }
    current = { sha: revision.sha, phase: 'starting' };
    const deploy = new Deploy(repo, project, s, revision, (phase) => (current = { sha: revision.sha, phase }));
    const outcome = await deploy.run();
    recorded ||= deploy.recorded;
    s.history.push({ sha: revision.sha, outcome, pr: revision.pr?.number });
    if (s.history.length > KEEP) s.history.splice(0, s.history.length - KEEP);
    current = undefined;
    break;
  }
  // The next run starts with this project's attributes only, not this deploy's sha and outcome.
  const input: DeployInput = { repo, project, carried: s };
  if (recorded) await makeContinueAsNewFunc<typeof deployWorkflow>({ typedSearchAttributes: searchAttributePairs({ repository: `${repo.owner}/${repo.name}`, project }) })(input);
  await continueAsNew<typeof deployWorkflow>(input);
}

/** How often a held queue checks that its holder still runs (a holder that died gives the turn back). */
const HOLD_CHECK = '10 minutes';

/** Gives the first waiting operator run its turn and waits until it gives it back or is gone. */
async function serveHold(s: DeployState, released: Set<string>, setCurrent: (c: DeployStatus['current']) => void, project: string): Promise<void> {
  const hold = s.holds![0]!;
  try {
    await getExternalWorkflowHandle(hold.holder).signal(deployHoldGrantedSignal, { requestId: hold.requestId, project });
    setCurrent({ sha: '', phase: 'held', holder: hold.holder });
    while (!(await condition(() => released.has(hold.requestId), HOLD_CHECK))) {
      if (!(await workflowRunning({ workflowId: hold.holder }))) break;
    }
  } catch (err) {
    log.info('operator run not reachable; its turn is skipped', { holder: hold.holder, error: String(err) });
  }
  s.holds = (s.holds ?? []).filter((h) => h.requestId !== hold.requestId);
}

/** The queued revision that every other queued one contains (merge order on the default branch). */
async function takeOldest(repo: RepoRef, project: string, s: DeployState): Promise<DeployRevision | undefined> {
  let oldest = 0;
  for (let i = 1; i < s.queue.length; i++) {
    const facts = await revisionFacts({ repo, project, sha: s.queue[i]!.sha, newer: s.queue[oldest]!.sha });
    if (facts.olderThanNewer) oldest = i;
  }
  return s.queue.splice(oldest, 1)[0];
}

/** One revision's deploy: plan, compare with what was approved (or ask), apply, compensate, report. */
class Deploy {
  recorded = false;
  private readonly checkName: string;
  private readonly base: Record<string, unknown>;
  private checkRunId = 0;
  private runs = 0;
  private readonly repo: RepoRef;
  private readonly project: string;
  private readonly s: DeployState;
  private readonly rev: DeployRevision;
  private readonly phase: (p: Phase) => void;

  constructor(repo: RepoRef, project: string, s: DeployState, rev: DeployRevision, phase: (p: Phase) => void) {
    this.repo = repo;
    this.project = project;
    this.s = s;
    this.rev = rev;
    this.phase = phase;
    this.checkName = `${CHECK_DEPLOY}: ${project}`;
    this.base = { project, sha: rev.sha, shortSha: rev.sha.slice(0, 7), actor: rev.actor, pr: rev.pr?.number };
  }

  async run(): Promise<DeployOutcome> {
    const { repo, project, s, rev } = this;
    const { sha } = rev;
    this.recorded = await searchAttributesRegistered();
    this.record({ repository: `${repo.owner}/${repo.name}`, project, trigger: rev.trigger, actor: rev.actor, headSha: sha, pr: rev.pr?.number, outcome: 'running' });
    this.checkRunId = await upsertCheckRun({ repo, headSha: sha, name: this.checkName, status: 'in_progress', output: { template: 'deploy/check', data: { ...this.base, state: 'running' } } });

    // Never backwards: a revision the deployed one already contains is skipped.
    const facts = await revisionFacts({ repo, project, sha, newer: s.deployed });
    if (s.deployed && facts.olderThanNewer) return this.finish('skipped', { reason: 'older', deployed: s.deployed, shortDeployed: s.deployed.slice(0, 7) });

    if (rev.upstreams.length > 0) {
      this.phase('waiting-upstream');
      const doneOf = (u: string) => s.upstreamDone.find((x) => x.sha === sha && x.project === u);
      await condition(() => rev.upstreams.every((u) => doneOf(u)));
      const blocked = rev.upstreams.find((u) => !OK.includes(doneOf(u)!.outcome));
      if (blocked) return this.finish('skipped', { reason: 'upstream', upstream: blocked, upstreamOutcome: doneOf(blocked)!.outcome });
    }

    this.phase('planning');
    let all: ResolvedProject[];
    let planned: RunResult;
    try {
      const at = await selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, sha, listProjects: true });
      if (at.configErrors?.length) return this.finish('failed', { reason: 'config', errors: at.configErrors });
      all = at.allProjects ?? [];
      if (!all.some((x) => x.name === project)) return this.finish('skipped', { reason: 'removed' });
      planned = await this.startRun('plan', all, { sha });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      return this.finish('failed', { reason: 'plan', error: failureMessage(err) });
    }
    if (planned.outcome === 'failed') {
      const { failure } = planned;
      if (!failure?.outputFile) return this.finish('failed', { reason: 'plan', error: failure?.error });
      return this.finish('failed', { reason: 'plan', step: failure.step }, { output: failure.outputFile });
    }
    const plan = planned.plan!;
    if (planned.outcome === 'no-changes') {
      s.deployed = sha;
      return this.finish('unchanged', { summaryLine: plan.summary.line });
    }

    // Apply only what was approved: the same resource actions, with the same values, as the PR's approved plan.
    let approvedBy = rev.approved?.approvers ?? [];
    const comparison = rev.approved ? await compare(rev.approved, plan) : undefined;
    if (!comparison?.same) {
      this.phase('waiting-approval');
      const question = { repo, project, rev, planned: plan, comparison, checkRunId: this.checkRunId, rulesSha: facts.parentSha ?? sha };
      // TerrapinWaiting while the question is open: what the approvals gauge counts.
      if (this.recorded) upsertSearchAttributes([waitingPair(true)]);
      const answer = await askForApproval(s, question, () => this.tellPr({ status: 'waiting' })).finally(() => {
        if (this.recorded) upsertSearchAttributes([waitingPair(false)]);
      });
      if (answer === 'superseded') return this.finish('superseded', { reason: 'newer' });
      if (answer === 'expired') return this.finish('expired', { window: APPROVAL_WINDOW });
      approvedBy = answer;
    }

    this.phase('applying');
    await upsertCheckRun({ repo, headSha: sha, name: this.checkName, checkRunId: this.checkRunId, status: 'in_progress', output: { template: 'deploy/check', data: { ...this.base, state: 'applying', summaryLine: plan.summary.line } } });
    const data = { summaryLine: plan.summary.line, approvedBy };
    const applied = await this.startRun('apply', all, { sha }, { plan: { planFile: plan.planFile, planSha256: plan.planSha256, counts: runCounts(plan.summary) }, label: planned.label }, approvedBy);
    // The outcome is unknown (worker lost, plan file gone or changed): never apply again blindly.
    if (applied.outcome === 'unknown' || applied.outcome === 'stale') return this.finish('unknown', { ...data, error: applied.failure?.error });
    if (applied.outcome === 'applied') {
      s.deployed = sha;
      return this.finish('deployed', data, { output: applied.logFile! });
    }
    // Compensate: the previously deployed revision (or, on a first deploy, the branch before this merge).
    const previous = s.deployed ?? facts.parentSha;
    const p = all.find((x) => x.name === project)!;
    const files: Record<string, string> = applied.logFile ? { output: applied.logFile } : {};
    if (p.onFailure !== 'rollback' || !previous) return this.finish('failed', { ...data, reason: 'apply', rollback: { status: 'disabled' } }, files);
    const rollback = await this.startRun('rollback', all, { sha: previous }, { label: `rollback-${previous.slice(0, 7)}`, settingsFromTarget: true });
    if (rollback.logFile) files.rollbackOutput = rollback.logFile;
    const status = rollback.outcome === 'rolled-back' ? 'rolled-back' : 'rollback-failed';
    const rollbackData = { status, sha: previous, ...(rollback.failure?.error ? { error: rollback.failure.error } : {}), ...(rollback.logFile ? { outputFile: rollback.logFile } : {}), shortSha: previous.slice(0, 7) };
    return this.finish(status, { ...data, reason: 'apply', rollback: rollbackData }, files);
  }

  private record(r: RunRecord): void {
    if (this.recorded) upsertSearchAttributes(searchAttributePairs(r));
  }

  private startRun(kind: RunInput['kind'], all: ResolvedProject[], at: { sha: string }, extra: Partial<RunInput> = {}, approvers?: string[]): Promise<RunResult> {
    const { repo, project, rev, s } = this;
    const p = all.find((x) => x.name === project)!;
    const input: RunInput = {
      repo,
      kind,
      record: { trigger: rev.trigger, pr: rev.pr?.number, actor: rev.actor, ...(approvers?.length ? { approvers } : {}) },
      recorded: this.recorded,
      source: { prNumber: 0, cloneUrl: repo.cloneUrl, sha: at.sha },
      project: { name: p.name, dir: p.dir, workspace: p.workspace, binary: p.terraform, env: p.env, hooks: p.hooks, inputs: p.inputs },
      known: all.map((x) => ({ name: x.name, dir: x.dir, workspace: x.workspace, binary: x.terraform })),
      label: `deploy-${rev.sha.slice(0, 7)}`,
      baseSha: s.deployed ?? '',
      ...extra,
    };
    return startRun(input, () => ++this.runs);
  }

  private async finish(outcome: DeployOutcome, data: Record<string, unknown> = {}, files?: Record<string, string>): Promise<DeployOutcome> {
    const { repo, project, rev } = this;
    this.phase('reporting');
    const d = { ...this.base, ...data, outcome };
    if (rev.pr) await postComment({ repo, number: rev.pr.number, key: `deploy-${project}-${rev.sha}`, message: { template: 'deploy/report', data: { project, ...d }, files } });
    await upsertCheckRun({ repo, headSha: rev.sha, name: this.checkName, checkRunId: this.checkRunId, status: 'completed', conclusion: CONCLUSION[outcome], output: { template: 'deploy/check', data: { ...d, state: outcome } } });
    this.record({ outcome });
    for (const downstream of rev.downstreams) {
      await enqueueDeploy({ repo, project: downstream, event: { type: 'upstream', sha: rev.sha, project, outcome } });
    }
    await this.tellPr({ status: 'finished', outcome });
    return outcome;
  }

  /** Lets the merged PR's workflow route `/approve` here while a deploy waits; it may be gone (push deploys). */
  private async tellPr(update: { status: 'waiting' | 'finished'; outcome?: DeployOutcome }): Promise<void> {
    const { repo, project, rev } = this;
    if (!rev.pr) return;
    const event: PrEvent = { type: 'deploy-status', deliveryId: `deploy-${project}-${rev.sha}-${update.status}`, project, sha: rev.sha, ...update };
    try {
      await getExternalWorkflowHandle(prWorkflowId(repo.owner, repo.name, rev.pr.number)).signal(PR_EVENT_SIGNAL, event);
    } catch (err) {
      log.info('merged PR workflow not reachable', { pr: rev.pr.number, error: String(err) });
    }
  }
}

async function compare(approved: ApprovedPlan, planned: SavedPlan) {
  try {
    return await comparePlans({ approved, current: planned });
  } catch (err) {
    // The approved plan's files are gone (another worker's disk, cleaned up): ask again rather than guess.
    if (!(err instanceof ActivityFailure)) throw err;
    return { same: false, changes: [] as string[], missing: true };
  }
}
