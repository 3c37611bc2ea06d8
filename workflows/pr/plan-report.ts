// How a plan is shown: one comment for the run (a project's own for one project, a table for several),
// a check per project and one for the whole, and the apply check that carries the Approve button.
// Once every surface shows it, the plan becomes the PR's current plan.
import type { PostedComment } from '../../activities/github.ts';
import { CHECK_APPLY, CHECK_PLAN, CHECK_POLICY } from '../../shared/contracts.ts';
import type { KnownProject, PlanRecord } from './state.ts';
import { postPlanReport } from '../activities.ts';
import { pending, planReport, totalSummary, type ProjectPlan } from '../projects.ts';
import { shortSha, type Conclusion, type PrSession } from './session.ts';

export interface PlanReport {
  planId: number;
  sha: string;
  /** The base branch commit the head was merged into for this plan. */
  baseSha?: string;
  key: string;
  checkRunId: number;
  projects: ProjectPlan[];
  known: KnownProject[];
  parallelism: number;
  /** Policy keys the PR's .terrapin.yml changes: they take effect after merge. */
  policyChanges?: string[];
  /** The default branch commit the policy was read at. */
  policy?: { branch?: string; sha: string };
}

const projectData = (p: ProjectPlan) => ({ project: p.dir, workspace: p.workspace, name: p.name });

const PLAN_CHECKS: Partial<Record<ProjectPlan['status'], [string, Conclusion]>> = {
  planned: ['checks/plan-done', 'success'],
  'no-changes': ['checks/plan-done', 'success'],
  failed: ['checks/plan-failed', 'failure'],
  locked: ['checks/plan-locked', 'failure'],
  skipped: ['checks/plan-skipped', 'skipped'],
};

export async function reportPlans(pr: PrSession, run: PlanReport): Promise<void> {
  const { sha, key, checkRunId, projects } = run;
  const data = { sha, shortSha: shortSha(sha) };
  const single = projects.length === 1;
  // Approvals must be written after this plan was shown. Taken before its comment is posted, not once the
  // reports are done: when that is recorded depends on when a worker next runs this workflow, and an
  // approval written in between is about this plan.
  const shownFrom = Date.now();
  const comment = single ? await reportOne(pr, run) : await reportMany(pr, run);
  if (!comment) return;
  await pr.retirePlan('superseded');

  const total = totalSummary(projects);
  if (!single) {
    for (const p of projects) {
      const d = { ...data, ...projectData(p), summaryLine: p.summary?.line, holderPr: p.lockedBy, place: p.lockPlace, upstream: p.skippedBecause };
      const [template, conclusion] = PLAN_CHECKS[p.status] ?? PLAN_CHECKS.failed!;
      await pr.check(`${CHECK_PLAN}: ${p.name}`, sha, 'completed', { template, data: d }, { checkRunId: p.checkRunId, conclusion, actions: ['replan'] });
    }
  }
  await reportPolicyChecks(pr, sha, projects);
  const incomplete = projects.filter((p) => !['planned', 'no-changes'].includes(p.status)).length;
  const summaryData = { ...data, ...(single ? projectData(projects[0]!) : {}), summaryLine: total.line, planned: projects.length - incomplete, total: projects.length };
  // Which reviewed copy decided who may approve and what runs: shown on the plan check, for the record.
  const policyData = run.policy ? { policyBranch: run.policy.branch, policySha: run.policy.sha } : {};
  const planTemplate = single ? 'checks/plan-done' : incomplete ? 'checks/plans-incomplete' : 'checks/plans-done';
  await pr.check(CHECK_PLAN, sha, 'completed', { template: planTemplate, data: { ...summaryData, ...policyData } }, { checkRunId, conclusion: incomplete ? 'failure' : 'success', actions: ['replan'] });
  const hasChanges = pending(projects).length > 0;
  // apply: afterMerge — approving is all the PR can do; the merge commit deploys.
  const afterMerge = hasChanges && pending(projects).every((p) => p.apply === 'afterMerge');
  const applyCheckId = !hasChanges
    ? await pr.check(CHECK_APPLY, sha, 'completed', { template: 'checks/apply-nothing', data: summaryData }, { conclusion: 'success' })
    : afterMerge
      ? await pr.check(CHECK_APPLY, sha, 'queued', { template: 'checks/apply-after-merge-waiting', data: summaryData }, { actions: ['approve'] })
      : await pr.check(CHECK_APPLY, sha, 'queued', { template: 'checks/apply-waiting', data: summaryData }, { actions: ['approve', 'apply'] });
  const first = projects[0]!;
  const plan: PlanRecord = {
    id: run.planId,
    sha,
    ...(run.baseSha ? { baseSha: run.baseSha } : {}),
    summary: single && first.summary ? first.summary : { ...total, import: 0, outputsChanged: false, hasChanges },
    commentNodeIds: comment.nodeIds,
    postedAt: shownFrom,
    applyCheckId,
    status: 'ready',
    projects,
    known: run.known,
    parallelism: run.parallelism,
  };
  // Approvable only once every surface shows it: a plan whose reporting failed is not.
  pr.s.plan = plan;
}

/** One project: its own comment; a failed or locked plan ends here (undefined: nothing to approve). */
async function reportOne(pr: PrSession, { sha, key, checkRunId, projects, policyChanges }: PlanReport): Promise<PostedComment | undefined> {
  const p = projects[0]!;
  const d = { sha, shortSha: shortSha(sha), ...projectData(p) };
  if (p.status === 'failed') {
    await pr.post(key, 'plan-error', { ...d, step: p.errorStep ?? 'plan', exitCode: p.exitCode, error: p.error }, p.errorFile ? { output: p.errorFile } : undefined);
    await pr.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-failed', data: d }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
    return undefined;
  }
  if (p.status === 'locked') {
    const locked = { ...d, holderPr: p.lockedBy, place: p.lockPlace };
    await pr.post(key, 'replies/locked', locked);
    await pr.check(CHECK_PLAN, sha, 'completed', { template: 'checks/plan-locked', data: locked }, { checkRunId, conclusion: 'failure', actions: ['replan'] });
    return undefined;
  }
  const findings = policyFindings(p.policyResults);
  return pr.post(key, 'plan', { ...d, summaryLine: p.summary!.line, hasChanges: p.summary!.hasChanges, policyChanges, ...findings.data }, { planText: p.planTextFile!, ...(p.showJsonFile ? { changeSummary: p.showJsonFile } : {}), ...findings.files });
}

/** A project's policy verdicts for a template: each names the data key its findings file is loaded into. */
function policyFindings(results: ProjectPlan['policyResults']): { data: Record<string, unknown>; files: Record<string, string> } {
  if (!results?.length) return { data: {}, files: {} };
  const files: Record<string, string> = {};
  const policies = results.map((r, i) => {
    const findingsKey = `policyFindings${i}`;
    if (r.findingsFile) files[findingsKey] = r.findingsFile;
    return { name: r.name, passed: r.passed, findingsKey, ...(r.error ? { error: r.error } : {}) };
  });
  return { data: { policies, policiesFailed: results.filter((r) => !r.passed).map((r) => r.name) }, files };
}

/** `terrapin/policy: <project>` for every project with policy checks whose plan was made. */
async function reportPolicyChecks(pr: PrSession, sha: string, projects: ProjectPlan[]): Promise<void> {
  for (const p of projects) {
    if (!p.policies?.length || (p.status !== 'planned' && p.status !== 'no-changes')) continue;
    const findings = policyFindings(p.policyResults);
    const failed = (p.policyResults ?? []).some((r) => !r.passed);
    const data = { sha, shortSha: shortSha(sha), ...projectData(p), checked: Boolean(p.policyResults), ...findings.data };
    p.policyCheckId = await pr.check(`${CHECK_POLICY}: ${p.name}`, sha, 'completed', { template: 'checks/policy-done', data, files: findings.files }, { conclusion: failed ? 'failure' : 'success' });
  }
}

/** Several projects: one table, each project's plan and how it differs from the previous plan's. */
function reportMany(pr: PrSession, { sha, key, projects, policyChanges }: PlanReport): Promise<PostedComment> {
  const previous = pr.s.plan?.projects;
  const report = {
    sha,
    shortSha: shortSha(sha),
    projects: projects.map((p) => planReport(p, previous?.find((x) => x.name === p.name))),
    ...(policyChanges?.length ? { policyChanges } : {}),
  };
  return postPlanReport({ repo: pr.repo, number: pr.number, key, report });
}
