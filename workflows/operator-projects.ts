// A short workflow the operator tools start to read a repository's projects at its default branch: the
// worker has the App's key, git and the data dir (the default branch's work dir is usually there already,
// made by the last push's drift sync), so the CLI and the MCP server need only Temporal.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { ConfiguredProject, OperatorProjectsInput, OperatorProjectsResult } from '../shared/operator-projects.ts';

// Someone is waiting for the answer: a few quick attempts, not the hour a plan's checkout may take.
const { resolveRepository, selectProjects } = proxyActivities<Pick<Activities, 'resolveRepository' | 'selectProjects'>>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second', nonRetryableErrorTypes: ['InvalidRepository', 'RepositoryNotAllowed', 'RepositoryNotFound'] },
});

export async function operatorProjectsWorkflow({ repository }: OperatorProjectsInput): Promise<OperatorProjectsResult> {
  const repo = await resolveRepository({ repository });
  const head = await selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, branch: 'HEAD', listProjects: true });
  // Only what describes each project travels back (and stays in history): not its env, hooks or rules.
  const projects = (head.allProjects ?? []).map(
    (p): ConfiguredProject => ({
      name: p.name,
      dir: p.dir,
      workspace: p.workspace,
      terraform: p.terraform,
      apply: p.apply,
      dependsOn: p.dependsOn,
      inputs: p.inputs,
      ...(p.drift ? { drift: p.drift } : {}),
    }),
  );
  return {
    repository: `${repo.owner}/${repo.name}`,
    repo,
    ...(head.defaultBranch ? { defaultBranch: head.defaultBranch } : {}),
    sha: head.sha,
    projects,
    ...(head.configErrors?.length ? { configErrors: head.configErrors } : {}),
  };
}
