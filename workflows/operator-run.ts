// An operator's plan, apply or destroy of one project at the default branch head (shared/operator.ts).
// Plans are runs like any other (project-run.ts), recorded with trigger `manual`. An apply or destroy is
// planned first, then waits behind a GitHub issue showing the plan: an `/approve` there by someone the
// default branch's rules allow (`permissions.approve`, the project's apply requirements, `destroyNeeds`
// for destroys; never the requester) lets it apply exactly that plan, under the project's lock, the one PRs
// take. A destroy covers the project's dependents too when asked (applied downstreams first); a failed
// destroy stops there and is reported: nothing is recreated on its own.
import { CancellationScope, condition, isCancellation, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ApplyRequirement, CommandRule, ResolvedProject } from '../shared/config.ts';
import { deployHoldGrantedSignal, lockWorkflowId } from '../shared/contracts.ts';
import { buildDag } from '../shared/dag.ts';
import {
  operatorSignal,
  operatorStatusQuery,
  type GateComment,
  type OperatorResult,
  type OperatorRunInput,
  type OperatorStatus,
} from '../shared/operator.ts';
import { waitingPair } from '../shared/records.ts';
import { runCounts, type RunInput, type RunResult } from '../shared/runs.ts';
import { closeGateIssue, enqueueDeploy, openGateIssue, postComment, reactToComment, requirementFacts, searchAttributesRegistered, selectProjects } from './activities.ts';
import { judgeActor, permissionsAt } from './authorize.ts';
import { createLockClient } from './lock-client.ts';
import { approvalRequirements, DEFAULT_REQUIREMENTS, factsNeeded, unmetApprovals, type RequirementResult } from './requirements.ts';
import { startRun } from './project-run.ts';

const APPROVAL_WINDOW = '7 days';
const sameLogin = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export async function operatorRunWorkflow(input: OperatorRunInput): Promise<OperatorResult> {
  const { repo, project, kind } = input;
  const status: OperatorStatus = { phase: 'planning', projects: [], approvers: [], handled: [], runs: [] };
  const comments: GateComment[] = [];
  const seen = new Set<string>();
  setHandler(operatorSignal, (c) => {
    // A comment counts once: a redelivery carries the same comment id under a new delivery id.
    if (seen.has(c.deliveryId) || seen.has(`comment:${c.commentId}`)) return;
    seen.add(c.deliveryId);
    seen.add(`comment:${c.commentId}`);
    comments.push(c);
  });
  setHandler(operatorStatusQuery, () => status);
  const end = (result: OperatorResult): OperatorResult => {
    status.result = result;
    status.phase = 'done';
    return result;
  };

  const head = await selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, branch: 'HEAD', listProjects: true });
  const { sha } = head;
  status.sha = sha;
  if (head.configErrors?.length) return end({ outcome: 'config-error', sha, reason: head.configErrors.join('; '), projects: [] });
  const all = head.allProjects ?? [];
  if (!all.some((p) => p.name === project)) return end({ outcome: 'no-project', sha, projects: [] });

  // A destroy takes its dependents with it (asked for) or refuses: destroying an upstream under them breaks them.
  const dependents = kind === 'destroy' ? dependentsOf(all, project) : [];
  if (dependents.length > 0 && !input.withDependents) return end({ outcome: 'refused', sha, reason: 'dependents', dependents, projects: [] });
  const targets = orderFor(kind, all, [project, ...dependents]);
  status.projects = targets.map((p) => p.name);

  const recorded = await searchAttributesRegistered();
  let runCount = 0;
  const run = async (p: ResolvedProject, runKind: RunInput['kind'], extra: Partial<RunInput> = {}, approvers: string[] = []): Promise<RunResult> => {
    const label = `operator-${kind}-${sha.slice(0, 7)}`;
    const runInput: RunInput = {
      repo,
      kind: runKind,
      record: { trigger: 'manual', ...(input.actor ? { actor: input.actor } : {}), ...(approvers.length ? { approvers } : {}) },
      recorded,
      source: { prNumber: 0, cloneUrl: repo.cloneUrl, sha },
      project: { name: p.name, dir: p.dir, workspace: p.workspace, binary: p.terraform, env: p.env, hooks: p.hooks, inputs: p.inputs, ...(p.policies?.length ? { policies: p.policies, ...(p.policiesAt ? { policiesAt: p.policiesAt } : {}) } : {}) },
      known: all.map((x) => ({ name: x.name, dir: x.dir, workspace: x.workspace, binary: x.terraform })),
      label,
      baseSha: sha,
      ...extra,
    };
    const result = await startRun(runInput, () => ++runCount);
    status.runs.push(result.runId);
    return result;
  };

  // Plan (destroy: `plan -destroy`) every target; a failed plan stops before anyone is asked.
  const plans: RunResult[] = [];
  for (const p of targets) {
    const planned = await run(p, kind === 'destroy' ? 'destroy' : 'plan');
    plans.push(planned);
    if (planned.outcome === 'failed') return end({ outcome: 'failed', sha, reason: 'plan', projects: plans.map(projectLine) });
  }
  if (kind === 'plan') return end({ outcome: plans[0]!.outcome === 'no-changes' ? 'no-changes' : 'planned', sha, projects: plans.map(projectLine) });
  if (plans.every((r) => r.outcome === 'no-changes')) return end({ outcome: 'no-changes', sha, projects: plans.map(projectLine) });
  const failedPolicies = plans.flatMap((r) => (r.policies ?? []).filter((c) => !c.passed).map((c) => `${r.project}: ${c.name}`));
  if (failedPolicies.length > 0) return end({ outcome: 'refused', sha, reason: `policy checks failed (${failedPolicies.join(', ')}); change the code in a pull request`, projects: plans.map(projectLine) });

  // The default branch's rules at the planned commit decide who may approve.
  const { approve: approveRule, apply: applyRule } = await permissionsAt(repo, sha);
  const requirements = new Map(targets.map((p) => [p.name, p.applyRequirements ?? DEFAULT_REQUIREMENTS]));
  status.phase = 'waiting-approval';
  const issue = await openGateIssue({
    repo,
    kind,
    project,
    requestId: workflowInfo().runId,
    sha,
    ...(input.actor ? { requestedBy: input.actor } : {}),
    sections: plans.map((r) => ({ project: r.project, runId: r.runId, summaryLine: r.plan!.summary.line, planTextFile: r.plan!.planTextFile, showJsonFile: r.plan!.showJsonFile })),
    approval: describeApproval(approveRule, [...requirements.values()].flat(), kind),
  });
  status.issue = issue;
  const reply = (c: GateComment, template: string, data: Record<string, unknown> = {}) =>
    postComment({ repo, number: c.issueNumber, key: `reply-${c.deliveryId}`, message: { template: `gate/${template}`, data: { project, kind, actor: c.actor, ...data } } });
  const finish = async (result: Omit<OperatorResult, 'issue' | 'sha'>, files?: Record<string, string>): Promise<OperatorResult> => {
    status.phase = 'reporting';
    const full: OperatorResult = { ...result, sha, issue };
    await postComment({ repo, number: issue.number, key: `result-${workflowInfo().runId}`, message: { template: 'gate/result', data: { project, kind, destroy: kind === 'destroy', ...full, projects: withLogs(full.projects, files, kind), shortSha: sha.slice(0, 7) }, files } });
    await closeGateIssue({ repo, number: issue.number, completed: result.outcome === 'applied' || result.outcome === 'destroyed' });
    return end(full);
  };

  // Wait for approvals that meet every target's requirements; answer every other comment.
  let teamsOf: Record<string, string[]> = {};
  /** The comments until the approvals suffice (undefined), or the request's end (expired, withdrawn). */
  const awaitApproval = async (): Promise<OperatorResult | undefined> => {
    for (;;) {
      if (!(await condition(() => comments.length > 0, input.approvalWindow ?? APPROVAL_WINDOW))) return finish({ outcome: 'expired', projects: plans.map(projectLine) });
      const c = comments.shift()!;
      await reactToComment({ repo, commentId: c.commentId });
      const handled = () => status.handled.push(c.deliveryId);
      if (c.issueNumber !== issue.number) {
        await reply(c, 'not-waiting', { issueUrl: issue.url });
        handled();
        continue;
      }
      if (c.command === 'cancel') {
        // Withdrawing a request is for whoever may apply it (it changes nothing).
        const verdict = await judgeActor(repo, applyRule, { login: c.actor, isAuthor: false, number: issue.number, headSha: sha });
        if (verdict.allowed) {
          handled();
          return finish({ outcome: 'cancelled', reason: `cancelled by @${c.actor}`, projects: plans.map(projectLine) });
        }
        if (verdict.because === 'not-listed') await reply(c, 'not-listed', { users: verdict.users, teams: verdict.teams, cancel: true });
        else await reply(c, 'not-allowed', { required: verdict.because === 'level' ? verdict.required : 'write', cancel: true });
        handled();
        continue;
      }
      if (c.command !== 'approve') {
        await reply(c, 'only-approve', {});
        handled();
        continue;
      }
      const isRequester = Boolean(input.actor) && sameLogin(c.actor, input.actor!);
      // The requester never approves their own request, whatever `allowAuthor` says.
      const verdict = isRequester ? ({ allowed: false, because: 'author' } as const) : await judgeActor(repo, approveRule, { login: c.actor, isAuthor: false, number: issue.number, headSha: sha });
      if (!verdict.allowed) {
        if (verdict.because === 'level') await reply(c, 'not-allowed', { required: verdict.required });
        else if (verdict.because === 'not-listed') await reply(c, 'not-listed', { users: verdict.users, teams: verdict.teams });
        else await reply(c, 'own-request', {});
        handled();
        continue;
      }
      if (!status.approvers.some((a) => sameLogin(a, c.actor))) status.approvers.push(c.actor);
      const counted = [...requirements.values()].flat().filter((r) => r.kind === 'approved' || r.kind === 'destroyNeeds');
      const { teams } = factsNeeded(counted);
      if (teams.length > 0) teamsOf = (await requirementFacts({ repo, number: issue.number, headSha: sha, baseRef: '', mergeable: false, divergence: false, approvers: status.approvers, teams })).teamsOf;
      const unmet = plans.flatMap((r) => unmetFor(requirements.get(r.project)!, status.approvers, teamsOf, input.actor, r.plan!.summary.destroy).map((u) => ({ ...u, project: r.project })));
      if (unmet.length > 0) {
        await reply(c, 'needs-more', { unmet, approvers: status.approvers });
        handled();
        continue;
      }
      await reply(c, 'approved', { approvers: status.approvers });
      handled();
      return undefined;
    }
  };
  let ended: OperatorResult | undefined;
  // TerrapinWaiting: what the approvals gauge counts, from the gate issue's opening to the approval (or the end).
  if (recorded) upsertSearchAttributes([waitingPair(true)]);
  try {
    ended = await awaitApproval();
  } catch (err) {
    // Cancelled in Temporal while waiting: the issue says so and is closed, rather than left open forever.
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(() => finish({ outcome: 'cancelled', reason: 'the request was cancelled in Temporal', projects: plans.map(projectLine) }));
    throw err;
  } finally {
    if (recorded) upsertSearchAttributes([waitingPair(false)]);
  }
  if (ended) return ended;

  // Apply in the projects' turn of their deploy queues (the one merges deploy through) and under their
  // locks (the ones PRs take), waiting in line for both. Downstreams' turns first: a deploy waits for its
  // upstreams' deploys, never the other way, so holding a downstream's turn cannot block an upstream's.
  status.phase = 'waiting-queue';
  const turns = new Set<string>();
  setHandler(deployHoldGrantedSignal, ({ requestId }) => void turns.add(requestId));
  const asked: Array<{ project: string; requestId: string }> = [];
  const granted = new Set<string>();
  // PRs waiting for a lock are told its holder's number: the request's issue, where they can follow it.
  const locks = createLockClient({ workflowId: workflowInfo().workflowId, pr: issue.number }, {}, { onNotice: (n) => n.kind === 'granted' && granted.add(n.lockId) });
  const lockIds = targets.map((p) => lockWorkflowId(repo.owner, repo.name, p.dir, p.workspace));
  const held: string[] = [];
  const lines = plans.map(projectLine);
  const files: Record<string, string> = {};
  let outcome: OperatorResult['outcome'] = kind === 'destroy' ? 'destroyed' : 'applied';
  let reason: string | undefined;
  try {
    // `targets` of a destroy are downstreams first already; an apply has one.
    for (const p of targets) {
      const requestId = `${workflowInfo().runId}:${p.name}`;
      asked.push({ project: p.name, requestId });
      await enqueueDeploy({ repo, project: p.name, event: { type: 'hold', holder: workflowInfo().workflowId, requestId } });
      await condition(() => turns.has(requestId));
    }
    status.phase = 'waiting-lock';
    for (const id of lockIds) {
      const answer = await locks.acquire(id);
      if (!answer.granted) {
        if (!answer.place) throw new LockLineFull(id);
        await condition(() => granted.has(id));
      }
      held.push(id);
    }
    status.phase = 'applying';
    for (const [i, p] of targets.entries()) {
      const planned = plans[i]!;
      if (planned.outcome === 'no-changes') continue;
      const applied = await run(p, kind, { plan: { planFile: planned.plan!.planFile, planSha256: planned.plan!.planSha256, counts: runCounts(planned.plan!.summary) }, label: planned.label }, status.approvers);
      lines[i] = projectLine(applied);
      if (applied.logFile) files[`output${i}`] = applied.logFile;
      if (applied.outcome !== 'applied') {
        // Stop here: the rest (upstreams of a destroy) stay as they are; nothing is recreated.
        for (let j = i + 1; j < targets.length; j++) lines[j] = { ...lines[j]!, outcome: 'skipped' };
        outcome = 'failed';
        break;
      }
    }
  } catch (err) {
    if (!(err instanceof LockLineFull)) throw err;
    outcome = 'failed';
    reason = 'the line for a project lock is full; ask again later';
    lines.forEach((l, i) => (lines[i] = { ...l, outcome: 'skipped' }));
  } finally {
    for (const id of held) await locks.release(id);
    for (const { project: name, requestId } of asked) await enqueueDeploy({ repo, project: name, event: { type: 'release', requestId } });
  }
  return finish({ outcome, ...(reason ? { reason } : {}), approvers: status.approvers, projects: lines }, files);
}

/** Each project line for the template: its log among the comment's files (`output<i>`), a destroy's apply said as such. */
const withLogs = (lines: OperatorResult['projects'], files: Record<string, string> = {}, kind: OperatorRunInput['kind']) =>
  lines.map((l, i) => ({ ...l, ...(kind === 'destroy' && l.outcome === 'applied' ? { outcome: 'destroyed' } : {}), ...(files[`output${i}`] ? { logKey: `output${i}` } : {}) }));

function projectLine(r: RunResult): OperatorResult['projects'][number] {
  return { project: r.project, runId: r.runId, outcome: r.outcome, ...(r.plan ? { summaryLine: r.plan.summary.line } : {}) };
}

/** Every project that depends on `name`, directly or through others. */
export function dependentsOf(all: readonly ResolvedProject[], name: string): string[] {
  const found = new Set<string>();
  const queue = [name];
  while (queue.length > 0) {
    const current = queue.shift()!;
    for (const p of all) {
      if (p.dependsOn.includes(current) && !found.has(p.name) && p.name !== name) {
        found.add(p.name);
        queue.push(p.name);
      }
    }
  }
  return all.filter((p) => found.has(p.name)).map((p) => p.name);
}

/** The targets in dependency order; a destroy runs in reverse (dependents go before what they use). */
function orderFor(kind: OperatorRunInput['kind'], all: readonly ResolvedProject[], names: string[]): ResolvedProject[] {
  const chosen = all.filter((p) => names.includes(p.name));
  const dag = buildDag(chosen.map((p) => ({ name: p.name, dependsOn: p.dependsOn.filter((d) => names.includes(d)) })));
  // The configuration refused cycles already; keep the listed order should one slip through.
  const order = dag.ok ? dag.order : chosen.map((p) => p.name);
  const sorted = order.map((n) => chosen.find((p) => p.name === n)!);
  return kind === 'destroy' ? sorted.reverse() : sorted;
}

/** The approvals the requirements count, over the approvers so far; the requester's never counts. */
function unmetFor(config: readonly ApplyRequirement[], approvers: string[], teamsOf: Record<string, string[]>, requester: string | undefined, destroy: number): RequirementResult[] {
  return unmetApprovals(approvalRequirements(config), { author: requester ?? '', approvers, teamsOf, destroy });
}

/** What the issue tells readers about who may approve. */
function describeApproval(rule: CommandRule, requirements: readonly ApplyRequirement[], kind: 'apply' | 'destroy') {
  const approved = requirements.filter((r) => r.kind === 'approved');
  const count = Math.max(1, ...approved.map((r) => (r.kind === 'approved' ? r.count : 1)));
  const destroyNeeds = kind === 'destroy' ? Math.max(0, ...requirements.map((r) => (r.kind === 'destroyNeeds' ? r.approvals : 0))) : 0;
  return { users: rule.users, teams: rule.teams, level: rule.level, count, ...(destroyNeeds ? { destroyNeeds } : {}) };
}

/** Too many waiting for a project's lock already: the request ends rather than wait outside the line. */
class LockLineFull extends Error {
  constructor(lockId: string) {
    super(`the line for ${lockId} is full`);
  }
}
