// Starting an operator's run (CLI and MCP): a plan, apply or destroy at the default branch head through
// operatorRunWorkflow (workflows/operator-run.ts), or a drift check through the drift workflow (as `/drift`
// does). Apply and destroy wait behind a GitHub issue: this returns its link as soon as the issue is open,
// and nothing here can approve anything.
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import type { GithubSettings } from '../app/config.ts';
import { NotFoundError } from './errors.ts';
import type { DriftOutcome, RepoRef } from '../shared/contracts.ts';
import {
  OPERATOR_WORKFLOW_TYPE,
  operatorStatusQuery,
  operatorWorkflowId,
  type OperatorResult,
  type OperatorRunKind,
  type OperatorStatus,
} from '../shared/operator.ts';

/** The drift workflow and its on-demand ids (activities/drift-runs.ts), kept in step with `/drift`. */
const DRIFT_WORKFLOW_TYPE = 'driftWorkflow';
const driftRunId = (repo: RepoRef, project: string) => `drift-run:${repo.owner}/${repo.name}:${project}`;

export interface OperatorDeps {
  client: Client;
  taskQueue: string;
}

export interface OperatorRunRequest {
  /** The repository, resolved (repoFromGithub): its installation and clone URL. */
  repo: RepoRef & { defaultBranch?: string };
  project: string;
  kind: OperatorRunKind;
  withDependents?: boolean;
  /** The operator's GitHub login when known: recorded, and never an approver of this request. */
  actor?: string;
  /** Must name the default branch: operator runs are of reviewed code only. */
  ref?: string;
}

export interface StartedOperatorRun {
  workflowId: string;
  kind: OperatorRunKind;
  /** apply / destroy: the issue where `/approve` lets the run proceed (absent when it ended before asking). */
  issueUrl?: string;
  issueNumber?: number;
}

/** A request the operator must change (wrong ref, one already waiting): said in one line. */
export class OperatorRequestError extends Error {}

export async function startOperatorRun(deps: OperatorDeps, req: OperatorRunRequest, hooks: { onStarted?: () => void } = {}): Promise<StartedOperatorRun> {
  const { client, taskQueue } = deps;
  const { repo, project, kind } = req;
  if (req.ref && req.repo.defaultBranch && req.ref !== req.repo.defaultBranch) {
    throw new OperatorRequestError(`operator runs use the default branch (${req.repo.defaultBranch}), not ${req.ref}: change other branches through a pull request`);
  }
  const ref: RepoRef = { owner: repo.owner, name: repo.name, installationId: repo.installationId, cloneUrl: repo.cloneUrl };
  if (kind === 'drift') {
    const workflowId = driftRunId(ref, project);
    try {
      await client.workflow.start(DRIFT_WORKFLOW_TYPE, { workflowId, taskQueue, args: [{ repo: ref, project, trigger: 'manual', ...(req.actor ? { actor: req.actor } : {}) }] });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // A check of the project is running: follow that one.
    }
    return { workflowId, kind };
  }
  const workflowId = operatorWorkflowId(ref, project, kind);
  try {
    await client.workflow.start(OPERATOR_WORKFLOW_TYPE, {
      workflowId,
      taskQueue,
      args: [{ repo: ref, project, kind, ...(req.withDependents ? { withDependents: true } : {}), ...(req.actor ? { actor: req.actor } : {}) }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    throw new OperatorRequestError(`${kind === 'apply' ? 'an' : 'a'} ${kind} of ${project} is already in progress (${workflowId}); wait for it, or approve or let it expire`);
  }
  hooks.onStarted?.();
  // The project is known once the run read `.terrapin.yml` at the default branch: a typo is said at once.
  const read = await waitForStatus(client, workflowId, (s) => s.projects.length > 0);
  if (read?.result?.outcome === 'no-project') throw new NotFoundError(`no project ${project} in .terrapin.yml of ${repo.owner}/${repo.name} at its default branch`);
  if (read?.result?.outcome === 'config-error') throw new OperatorRequestError(`.terrapin.yml of ${repo.owner}/${repo.name} at its default branch is invalid: ${read.result.reason}`);
  if (kind === 'plan') return { workflowId, kind };
  const issue = (await waitForStatus(client, workflowId, (s) => Boolean(s.issue)))?.issue;
  return { workflowId, kind, ...(issue ? { issueUrl: issue.url, issueNumber: issue.number } : {}) };
}

/** Polls the run's status until `ready` holds or the run is over (its last status then). */
async function waitForStatus(client: Client, workflowId: string, ready: (s: OperatorStatus) => boolean, timeoutMs = 10 * 60_000): Promise<OperatorStatus | undefined> {
  const handle = client.workflow.getHandle(workflowId);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await handle.query(operatorStatusQuery);
    if (ready(status) || status.phase === 'done') return status;
    const { status: wf } = await handle.describe();
    if (wf.name !== 'RUNNING') return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
  return undefined;
}

export type OperatorRunEnd = { kind: 'drift'; result: DriftOutcome } | { kind: 'plan' | 'apply' | 'destroy'; result: OperatorResult };

/** Waits for a started run to end (`--wait`); a run that failed in Temporal itself throws its cause. */
export async function waitForOperatorRun(client: Client, started: Pick<StartedOperatorRun, 'workflowId' | 'kind'>): Promise<OperatorRunEnd> {
  try {
    const result = await client.workflow.getHandle(started.workflowId).result();
    return started.kind === 'drift' ? { kind: 'drift', result: result as DriftOutcome } : { kind: started.kind, result: result as OperatorResult };
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause) throw new Error(err.cause.message);
    throw err;
  }
}

/** Whether the run's end is a success, for exit codes. */
export function operatorRunSucceeded(end: OperatorRunEnd): boolean {
  if (end.kind === 'drift') return end.result.status === 'clean' || end.result.status === 'drifted';
  return ['planned', 'no-changes', 'applied', 'destroyed'].includes(end.result.outcome);
}

/**
 * The repository as workflows need it, from the GitHub App's credentials: its installation, clone URL and
 * default branch. Throws NotFoundError when the App is not installed there. Octokit is loaded only here.
 */
export async function repoFromGithub(settings: Omit<GithubSettings, 'webhookSecret'>, fullName: string): Promise<RepoRef & { defaultBranch: string }> {
  const [owner, name] = fullName.split('/');
  if (!owner || !name) throw new OperatorRequestError(`repository must be owner/name, not ${fullName}`);
  const [{ Octokit }, { createAppAuth }, { createGithubClients }] = await Promise.all([import('@octokit/rest'), import('@octokit/auth-app'), import('../activities/github-client.ts')]);
  const app = new Octokit({ baseUrl: settings.baseUrl, authStrategy: createAppAuth, auth: { appId: settings.appId, privateKey: settings.privateKey } });
  let installationId: number;
  try {
    installationId = (await app.apps.getRepoInstallation({ owner, repo: name })).data.id;
  } catch (err) {
    if ((err as { status?: number }).status === 404) throw new NotFoundError(`the GitHub App is not installed on ${fullName} (or the repository does not exist)`);
    throw err;
  }
  const installation = createGithubClients({ ...settings, webhookSecret: '' }).forInstallation(installationId);
  const { data } = await installation.repos.get({ owner, repo: name });
  return { owner, name, installationId, cloneUrl: data.clone_url, defaultBranch: data.default_branch };
}
