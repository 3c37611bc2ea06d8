// A deploy whose plan is not the one approved on its PR asks again and waits: an approval counts when it
// was written after the question, by someone `permissions.approve` allows as the default branch had it
// before this revision, who is no author of the change, and once the approvals meet the project's apply
// requirements. A newer revision of the queue that contains this one supersedes it.
import { condition } from '@temporalio/workflow';
import type { ApplyRequirement, CommandRule } from '../../shared/config.ts';
import { CHECK_DEPLOY, type DeployRevision, type DeployState, type RepoRef } from '../../shared/contracts.ts';
import type { SavedPlan } from '../../shared/runs.ts';
import { postComment, pullRequestCommitLogins, requirementFacts, revisionFacts, selectProjects, upsertCheckRun } from '../activities.ts';
import { judgeActor } from '../authorize.ts';
import { DEFAULT_PERMISSIONS } from '../permissions.ts';
import { approvalRequirements, DEFAULT_REQUIREMENTS, factsNeeded, unmetApprovals, type RequirementResult } from '../requirements.ts';

/** How long a revision waits for a fresh approval before it lapses. */
export const APPROVAL_WINDOW = '30 days';

export interface Question {
  repo: RepoRef;
  project: string;
  rev: DeployRevision;
  planned: SavedPlan;
  /** How the plan differs from the approved one (absent: nothing was approved on the PR). */
  comparison?: { changes: string[]; diffFile?: string; missing?: boolean };
  checkRunId: number;
  /** The commit whose rules judge the approvals: the revision's first parent. */
  rulesSha: string;
}

const sameLogin = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Approvals nobody is waiting for are answered on their PR, not kept for a later deploy. */
export async function answerStaleApprovals(s: DeployState, repo: RepoRef, project: string): Promise<void> {
  for (const a of s.approvals.splice(0)) {
    if (a.prNumber) await postComment({ repo, number: a.prNumber, key: `reply-${a.deliveryId}`, message: { template: 'deploy/nothing-waiting', data: { project, actor: a.actor } } });
  }
}

/** Posts the difference and waits for approvals that meet the requirements: the approvers, or why it stopped waiting. */
export async function askForApproval(s: DeployState, q: Question, tellPr: () => Promise<void>): Promise<string[] | 'superseded' | 'expired'> {
  const { repo, project, rev, planned, comparison } = q;
  const { sha } = rev;
  const checkName = `${CHECK_DEPLOY}: ${project}`;
  const d = { sha, shortSha: sha.slice(0, 7), hadApproval: Boolean(rev.approved), missing: comparison?.missing, changes: comparison?.changes ?? [], summaryLine: planned.summary.line, pr: rev.pr?.number };
  // Approvals sent before this question was asked did not see it.
  await answerStaleApprovals(s, repo, project);
  // Approvals written from here on saw the question below (taken before it is posted: when a worker gets
  // to record a later time depends on the worker, not on what the approver saw).
  const askedAt = Date.now();
  const files: Record<string, string> = { planText: planned.planTextFile };
  if (comparison?.diffFile) files.diff = comparison.diffFile;
  if (rev.pr) await postComment({ repo, number: rev.pr.number, key: `deploy-ask-${project}-${sha}`, message: { template: 'deploy/needs-approval', data: { project, ...d }, files } });
  // Without a PR (a direct push) the check is where the plan is reviewed and refusals are told.
  const checkFiles = rev.pr ? undefined : { planText: planned.planTextFile };
  const waiting = (data: Record<string, unknown> = {}) =>
    upsertCheckRun({ repo, headSha: sha, name: checkName, checkRunId: q.checkRunId, status: 'queued', output: { template: 'deploy/check', data: { project, ...d, ...data, state: 'waiting' }, files: checkFiles }, actions: ['approve'] });
  await waiting();
  await tellPr();
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
      if ((await revisionFacts({ repo, project, sha, newer: next.sha })).olderThanNewer) return 'superseded';
    }
    const approval = s.approvals.shift();
    if (!approval) continue;
    const replyTo = approval.prNumber ?? rev.pr?.number;
    const data = (extra: Record<string, unknown> = {}) => ({ project, actor: approval.actor, shortSha: sha.slice(0, 7), ...extra });
    const reply = (template: string, extra: Record<string, unknown> = {}) =>
      replyTo ? postComment({ repo, number: replyTo, key: `reply-${approval.deliveryId}`, message: { template: `deploy/${template}`, data: data(extra) } }) : undefined;
    // On the PR where the approval was written, or, for a direct push, on the check.
    const refuse = async (template: string, extra: Record<string, unknown> = {}) => {
      if (replyTo) await reply(template, extra);
      else await waiting({ refusal: { template: `deploy/${template}`, ...data(extra) } });
    };
    if ((approval.sha && approval.sha !== sha) || (approval.prNumber && approval.prNumber !== rev.pr?.number)) {
      await reply('nothing-waiting');
      continue;
    }
    if (approval.createdAt && Date.parse(approval.createdAt) < Math.floor(askedAt / 1000) * 1000) {
      await reply('approval-outdated');
      continue;
    }
    // The rules in force before this revision (its first parent): a change cannot loosen who approves it.
    rules ??= await rulesAt(repo, project, q.rulesSha);
    const isAuthor = authors.some((a) => sameLogin(a, approval.actor));
    let verdict = await judgeActor(repo, rules.approve, { login: approval.actor, isAuthor, number: rev.pr?.number ?? 0, headSha: sha });
    if (verdict.allowed && rev.pr && !rules.approve.allowAuthor) {
      committers ??= await pullRequestCommitLogins({ repo, number: rev.pr.number });
      if (committers.some((a) => sameLogin(a, approval.actor))) verdict = { allowed: false, because: 'author' };
    }
    if (!verdict.allowed) {
      const opener = Boolean(rev.pr) && sameLogin(approval.actor, rev.pr!.author);
      if (verdict.because === 'level') await refuse('not-allowed', { required: verdict.required });
      else if (verdict.because === 'not-listed') await refuse('not-listed', { users: verdict.users, teams: verdict.teams, rulesSha: q.rulesSha.slice(0, 7) });
      else if (opener) await refuse('own-pr');
      else await refuse('own-change', { pushed: rev.trigger === 'push' });
      continue;
    }
    if (!approvers.some((a) => sameLogin(a, approval.actor))) approvers.push(approval.actor);
    const unmet = await unmetRequirements(repo, rules.requirements, approvers, [...authors, ...(committers ?? [])], rev, planned.summary.destroy);
    if (unmet.length === 0) return approvers;
    await refuse('needs-more', { unmet });
  }
}

/**
 * `permissions.approve` and this project's apply requirements as the default branch had them at `sha`
 * (defaults when the file is broken or the project is new there).
 */
async function rulesAt(repo: RepoRef, project: string, sha: string): Promise<{ approve: CommandRule; requirements: readonly ApplyRequirement[] }> {
  // The commit's own copy: the default branch as it was then, not as it is now (this very merge changed it).
  const at = await selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, sha, listProjects: true, policyFrom: 'commit' });
  const requirements = at.configErrors?.length ? undefined : at.allProjects?.find((x) => x.name === project)?.applyRequirements;
  return { approve: (at.permissions ?? DEFAULT_PERMISSIONS).approve, requirements: requirements ?? DEFAULT_REQUIREMENTS };
}

/**
 * The project's apply requirements over every approval this revision collected. `mergeable` and
 * `undiverged` are about an open PR: a merged commit meets them.
 */
async function unmetRequirements(repo: RepoRef, config: readonly ApplyRequirement[], approvers: string[], authors: string[], rev: DeployRevision, destroy: number): Promise<RequirementResult[]> {
  const counted = approvalRequirements(config);
  const { teams } = factsNeeded(counted);
  const teamsOf =
    teams.length > 0 ? (await requirementFacts({ repo, number: rev.pr?.number ?? 0, headSha: rev.sha, baseRef: '', mergeable: false, divergence: false, approvers, teams })).teamsOf : {};
  return unmetApprovals(counted, { author: rev.pr?.author ?? rev.actor, authors, approvers, teamsOf, destroy });
}
