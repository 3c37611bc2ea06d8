// A drift check of one project at the default branch head, started by the project's schedule
// (drift:{owner}/{repo}:{project}) or by `/drift`. The check itself is one run (a refresh-only and a
// normal plan, project-run.ts), which is also its record; this workflow files what it found: drift opens or
// updates the project's drift issue (and offers its fix-plan for reconciling), none closes it.
import { ApplicationFailure } from '@temporalio/workflow';
import type { DriftOutcome, DriftRunInput } from '../shared/contracts.ts';
import { closeDrift, offerReconcile, reportDrift, searchAttributesRegistered, selectProjects } from './activities.ts';
import { startRun } from './project-run.ts';

export async function driftWorkflow({ repo, project, trigger, actor }: DriftRunInput): Promise<DriftOutcome> {
  // prNumber 0: these work dirs belong to no pull request.
  const head = await selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, branch: 'HEAD', listProjects: true });
  const { sha } = head;
  if (head.configErrors?.length) {
    // A broken config on the default branch is the PRs' to fix; the check fails visibly in Temporal.
    throw ApplicationFailure.nonRetryable(`.terrapin.yml at ${sha} is invalid: ${head.configErrors.join('; ')}`, 'InvalidConfig');
  }
  const all = head.allProjects ?? [];
  const p = all.find((x) => x.name === project);
  if (!p) return { status: 'no-project', sha };

  let runs = 0;
  const run = await startRun(
    {
      repo,
      kind: 'drift',
      record: { trigger: trigger === 'manual' ? 'manual' : 'drift', ...(actor ? { actor } : {}) },
      recorded: await searchAttributesRegistered(),
      source: { prNumber: 0, cloneUrl: repo.cloneUrl, sha },
      project: { name: p.name, dir: p.dir, workspace: p.workspace, binary: p.terraform, env: p.env, hooks: p.hooks, inputs: p.inputs },
      known: all.map((x) => ({ name: x.name, dir: x.dir, workspace: x.workspace, binary: x.terraform })),
      label: 'drift',
    },
    () => ++runs,
  );
  if (run.outcome === 'failed') return { status: 'error', sha, step: run.failure?.step ?? 'plan' };
  if (run.outcome !== 'drifted') {
    await closeDrift({ repo, project, sha });
    return { status: 'clean', sha, resources: [] };
  }
  const drift = run.drift!;
  // Approvals of the fix-plan must be written after the issue shows it.
  const shownFrom = Date.now();
  const issue = await reportDrift({
    repo,
    project,
    sha,
    resources: drift.resources,
    summaryLine: drift.plan.summary.line,
    planTextFile: drift.plan.planTextFile,
    refreshTextFile: drift.refreshTextFile,
    reconcile: p.drift?.reconcile ?? false,
  });
  if (p.drift?.reconcile) {
    const target = { workDir: run.workDir, projectDir: p.dir, workspace: p.workspace, binary: p.terraform, label: drift.plan.label };
    const offer = { type: 'offer' as const, sha, issueNumber: issue.number, shownFrom, target, planFile: drift.plan.planFile, planSha256: drift.plan.planSha256, env: p.env };
    await offerReconcile({ repo, project, offer });
  }
  return { status: 'drifted', sha, resources: drift.resources };
}
