// Starts drift checks on demand (`/drift`): one run per project, id drift-run:{owner}/{repo}:{project};
// a check of that project still running is left alone rather than started twice.
import { activityInfo } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { DRIFT_RECONCILE_WORKFLOW_TYPE, RECONCILE_SIGNAL, driftReconcileId, type RepoRef, type ReconcileEvent } from '../shared/contracts.ts';
import type { ProjectSelection, SelectProjectsInput } from '../shared/activity-contracts.ts';
import { syncDriftSchedules, type SyncDriftSchedulesResult } from './drift-schedules.ts';
import { signalProjectWorkflow } from './project-workflows.ts';

export const DRIFT_WORKFLOW_TYPE = 'driftWorkflow';
export const driftRunId = (repo: RepoRef, project: string) => `drift-run:${repo.owner}/${repo.name}:${project}`;

export function createDriftRunActivities({ client, selectProjects }: { client: Client; selectProjects: (input: SelectProjectsInput) => Promise<ProjectSelection> }) {
  return {
    /** Makes the repository's drift schedules match `.terrapin.yml` at the default branch head. */
    async syncDriftSchedulesAtHead({ repo }: { repo: RepoRef }): Promise<SyncDriftSchedulesResult | { configErrors: string[] }> {
      const head = await selectProjects({ repo, prNumber: 0, cloneUrl: repo.cloneUrl, branch: 'HEAD', listProjects: true });
      // A broken file keeps the schedules as they are: the next merge that fixes it syncs them.
      if (head.configErrors?.length) return { configErrors: head.configErrors };
      const projects = (head.allProjects ?? []).map((p) => ({ name: p.name, drift: p.drift }));
      return syncDriftSchedules({ repo, projects, taskQueue: activityInfo().taskQueue, workflowType: DRIFT_WORKFLOW_TYPE }, { client });
    },

    /** Hands a drift check's fix-plan to the project's reconcile workflow (starting it if needed). */
    async offerReconcile({ repo, project, offer }: { repo: RepoRef; project: string; offer: Extract<ReconcileEvent, { type: 'offer' }> }): Promise<void> {
      await signalProjectWorkflow(client, { type: DRIFT_RECONCILE_WORKFLOW_TYPE, workflowId: driftReconcileId(repo, project), signal: RECONCILE_SIGNAL }, repo, project, offer);
    },

    async startDriftRuns({ repo, projects, actor }: { repo: RepoRef; projects: string[]; actor?: string }): Promise<{ started: string[]; running: string[] }> {
      const result = { started: [] as string[], running: [] as string[] };
      for (const project of projects) {
        try {
          await client.workflow.start(DRIFT_WORKFLOW_TYPE, {
            workflowId: driftRunId(repo, project),
            taskQueue: activityInfo().taskQueue,
            args: [{ repo, project, trigger: 'manual', ...(actor ? { actor } : {}) }],
          });
          result.started.push(project);
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          result.running.push(project);
        }
      }
      return result;
    },
  };
}
