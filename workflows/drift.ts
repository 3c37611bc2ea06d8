// A drift check of one project at the default branch head: a refresh-only and a normal plan; drift
// found opens or updates the project's drift issue, none closes it. Started by the project's schedule
// (drift:{owner}/{repo}:{project}) or by `/drift`.
import { ApplicationFailure, patched, upsertSearchAttributes } from '@temporalio/workflow';
import type { OutputInput } from '../shared/activity-contracts.ts';
import { github, temporalCalls, workspace } from './pr-activities.ts';
import { searchAttributePairs, type RunRecord } from '../shared/records.ts';
import { type RepoRef, type DriftOutcome, type DriftRunInput } from '../shared/contracts.ts';

export async function driftWorkflow(input: DriftRunInput): Promise<DriftOutcome> {
  // Versioned: runs started before drift runs were recorded with search attributes replay without them.
  const records = patched('drift-records') && (await temporalCalls.searchAttributesRegistered());
  const record = (r: RunRecord) => {
    if (records) upsertSearchAttributes(searchAttributePairs(r));
  };
  record({ repository: `${input.repo.owner}/${input.repo.name}`, project: input.project, trigger: input.trigger === 'manual' ? 'manual' : 'drift', actor: input.actor });
  const outcome = await checkDrift(input, (sha) => record({ headSha: sha }));
  record({ outcome: outcome.status });
  return outcome;
}

async function checkDrift({ repo, project }: DriftRunInput, checkedOut: (sha: string) => void): Promise<DriftOutcome> {
  // prNumber 0: these work dirs belong to no pull request.
  const checkout = await workspace.selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, branch: 'HEAD', listProjects: true });
  const { sha, workDir } = checkout;
  checkedOut(sha);
  if (checkout.configErrors?.length) {
    // A broken config on the default branch is the PRs' to fix; the run fails visibly in Temporal.
    throw ApplicationFailure.nonRetryable(`.terrapin.yml at ${sha} is invalid: ${checkout.configErrors.join('; ')}`, 'InvalidConfig');
  }
  const p = checkout.allProjects?.find((x) => x.name === project);
  if (!p) return { status: 'no-project', sha };

  const label = 'drift';
  const inputs: OutputInput[] = [];
  for (const [variable, ref] of Object.entries(p.inputs)) {
    const up = checkout.allProjects!.find((x) => x.name === ref.project)!;
    const { outputsFile } = await workspace.readOutputs({ workDir, projectDir: up.dir, workspace: up.workspace, binary: up.terraform, label: `${label}-in` });
    inputs.push({ variable, project: ref.project, output: ref.output, outputsFile });
  }
  const report = await workspace.detectDrift({ workDir, projectDir: p.dir, workspace: p.workspace, binary: p.terraform, label, env: p.env, inputs });
  if ('error' in report && report.error) return { status: 'error', sha, step: report.error.step };
  if (!('plan' in report)) return { status: 'error', sha, step: 'plan' };

  if (report.drifted) {
    // Approvals of the fix-plan must be written after the issue shows it.
    const shownFrom = Date.now();
    const issue = await github.reportDrift({
      repo,
      project,
      sha,
      resources: report.resources,
      summaryLine: report.plan.summary.line,
      planTextFile: report.plan.textFile,
      refreshTextFile: report.refreshOnly.changed ? report.refreshOnly.textFile : undefined,
      reconcile: p.drift?.reconcile ?? false,
    });
    if (p.drift?.reconcile) {
      await github.offerReconcile({
        repo,
        project,
        offer: {
          type: 'offer',
          sha,
          issueNumber: issue.number,
          shownFrom,
          // detectDrift keeps the normal plan under `<label>-plan`: apply it with the same files.
          target: { workDir, projectDir: p.dir, workspace: p.workspace, binary: p.terraform, label: `${label}-plan` },
          planFile: report.plan.planFile,
          planSha256: report.plan.planSha256,
          env: p.env,
        },
      });
    }
    return { status: 'drifted', sha, resources: report.resources };
  }
  await github.closeDrift({ repo, project, sha });
  return { status: 'clean', sha, resources: [] };
}
