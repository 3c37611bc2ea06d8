// The tools that start runs: the project is checked against the default branch's `.terrapin.yml` first
// (read by the worker, which also resolves the repository), then operator/start.ts starts the run. Applies
// and destroys come back with the issue to approve on: nothing here approves.
import { NotFoundError } from '../operator/errors.ts';
import { readProjects } from '../operator/projects.ts';
import { startOperatorRun, waitForOperatorRun, type StartedOperatorRun } from '../operator/start.ts';
import type { RepoRef } from '../shared/contracts.ts';
import { operatorWorkflowId, type OperatorRunKind } from '../shared/operator.ts';
import type { McpDeps } from './server.ts';

type Deps = Pick<McpDeps, 'client' | 'taskQueue' | 'approvalWaitMs'>;

/**
 * How long a request waits for its plan and issue before answering with the run id alone: under the
 * 60 s an MCP client waits for an answer by default, so a long plan does not look like a failure.
 */
export const APPROVAL_WAIT_MS = 40_000;

/** The repository as workflows take it, once `name` is known to be one of its projects. */
async function projectOf(deps: Deps, repository: string, name: string): Promise<RepoRef> {
  const read = await readProjects(deps, repository);
  if (read.configErrors?.length) {
    throw new Error(`.terrapin.yml on ${read.defaultBranch ?? 'the default branch'} of ${read.repository} has errors, so nothing runs: ${read.configErrors[0]}`);
  }
  if (!read.projects.some((p) => p.name === name)) {
    const names = read.projects.map((p) => p.name);
    throw new NotFoundError(`${read.repository} has no project "${name}"; ${names.length ? `its projects: ${names.join(', ')}` : 'it has no projects'}`);
  }
  return read.repo;
}

export async function startRun(deps: Deps, repository: string, project: string, kind: OperatorRunKind, withDependents = false): Promise<StartedOperatorRun> {
  const repo = await projectOf(deps, repository, project);
  return startOperatorRun(deps, { repo, project, kind, ...(withDependents ? { withDependents } : {}) });
}

/**
 * request_apply, request_destroy: start the run and answer with its approval issue, or — when the plan takes
 * longer than the wait — with the run id alone (get_run shows the issue once it is open).
 */
export async function requestApproval(deps: Deps, repository: string, project: string, kind: 'apply' | 'destroy', withDependents = false): Promise<object> {
  const repo = await projectOf(deps, repository, project);
  // The run id alone is answered only once its workflow exists: get_run must find it.
  let workflowStarted!: () => void;
  const begun = new Promise<void>((resolve) => (workflowStarted = resolve));
  const starting = startOperatorRun(deps, { repo, project, kind, ...(withDependents ? { withDependents } : {}) }, { onStarted: workflowStarted });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = Promise.all([
    begun,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deps.approvalWaitMs ?? APPROVAL_WAIT_MS);
    }),
  ]).then(() => undefined);
  try {
    const started = await Promise.race([starting, waited]);
    if (started) return await approvalRequest(deps, started);
  } finally {
    clearTimeout(timer);
  }
  starting.catch(() => undefined); // still polling for the issue; its end is get_run's to tell
  return {
    runId: operatorWorkflowId(repo, project, kind),
    kind,
    status: 'planning',
    approval: 'The plan is still running; the approval issue opens when it is ready: get_run with this run id shows its link. No tool can approve.',
  };
}

/** Outcomes of a run that ended before asking for approval which the agent must hear as a failure. */
const FAILED = new Set(['refused', 'failed', 'config-error', 'no-project', 'expired']);

/**
 * An apply or destroy request: the issue to approve on and the run to watch; or, when the run ended before
 * asking (nothing to change, dependents without withDependents), what it ended with.
 */
async function approvalRequest(deps: Deps, started: StartedOperatorRun): Promise<object> {
  const watch = { runId: started.workflowId, kind: started.kind };
  if (started.issueUrl) {
    return {
      ...watch,
      status: 'waiting-approval',
      issueUrl: started.issueUrl,
      issueNumber: started.issueNumber,
      approval: `Nothing changes until a person whom the project's rules allow comments /approve on ${started.issueUrl}. No tool can approve.`,
    };
  }
  const end = await waitForOperatorRun(deps.client, started);
  if (end.kind === 'drift') return { ...watch, status: 'done', result: end.result };
  const { outcome, reason, dependents = [] } = end.result;
  if (outcome === 'refused' && reason === 'dependents') {
    throw new Error(`refused: ${dependents.join(', ')} depend${dependents.length === 1 ? 's' : ''} on it; request_destroy with withDependents: true destroys them too (dependents first)`);
  }
  if (FAILED.has(outcome)) throw new Error(`${outcome}${reason ? `: ${reason}` : ''} (run ${started.workflowId})`);
  return { ...watch, status: 'done', result: end.result };
}
