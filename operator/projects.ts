// The configured projects of a repository at its default branch, for the CLI and the MCP server: names,
// dirs, workspaces, dependency edges with the outputs they carry, apply mode and drift schedule.
//
// Read by the worker, not here: a short workflow (workflows/operator-projects.ts) on the task queue resolves
// the repository with the App's key and reads `.terrapin.yml` with the same code a plan uses (the default
// branch's head, the operator's rules, detection when the file lists no projects). So a tool needs only its
// Temporal connection: no App key, no git, no data dir of its own.
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, TimeoutFailure, type Client } from '@temporalio/client';
import { BadInputError, NotFoundError, UnavailableError } from './errors.ts';
import { buildDag } from '../shared/dag.ts';
import { OPERATOR_PROJECTS_WORKFLOW_TYPE, type ConfiguredProject, type OperatorProjectsInput, type OperatorProjectsResult } from '../shared/operator-projects.ts';

export interface ProjectsDeps {
  client: Client;
  taskQueue: string;
}

/** One output of an upstream project fed to a downstream one as a variable. */
export interface OutputMapping {
  output: string;
  variable: string;
}

/** `to` depends on `from`; `outputs` is empty for a plain `dependsOn`. */
export interface DependencyEdge {
  from: string;
  to: string;
  outputs: OutputMapping[];
}

export interface ProjectView {
  name: string;
  dir: string;
  workspace: string;
  terraform: ConfiguredProject['terraform'];
  /** beforeMerge: applied on the PR after approval; afterMerge: deployed from the merge commit. */
  apply: ConfiguredProject['apply'];
  dependsOn: string[];
  /** The projects that depend on this one (what a destroy with dependents would take along). */
  dependents: string[];
  /** Absent: no scheduled drift check. */
  drift?: { schedule: string; reconcile: boolean };
}

export interface ProjectGraph {
  repository: string;
  defaultBranch?: string;
  sha: string;
  /** In dependency order: every project after the ones it depends on. */
  projects: ProjectView[];
  edges: DependencyEdge[];
  configErrors?: string[];
}

/** How long a read may take, waiting for a busy worker included. */
const READ_TIMEOUT = '3 minutes';

/** The repository's projects at its default branch, read by a Terrapin worker. */
export async function listProjects(deps: ProjectsDeps, repository: string): Promise<ProjectGraph> {
  return projectGraph(await readProjects(deps, repository));
}

/**
 * What the worker read, with the repository as workflows take it (its installation and clone URL): what
 * an operator run of one of these projects is started with (operator/start.ts).
 */
export async function readProjects(deps: ProjectsDeps, repository: string): Promise<OperatorProjectsResult> {
  await requireWorker(deps);
  const input: OperatorProjectsInput = { repository };
  try {
    const result = await deps.client.workflow.execute(OPERATOR_PROJECTS_WORKFLOW_TYPE, {
      taskQueue: deps.taskQueue,
      workflowId: `operator-projects:${repository}:${randomUUID()}`,
      args: [input],
      workflowExecutionTimeout: READ_TIMEOUT,
    });
    return result as OperatorProjectsResult;
  } catch (err) {
    throw asOperatorError(err);
  }
}

/** The worker's refusal as the error the CLI and the MCP server tell apart (exit code, tool error). */
function asOperatorError(err: unknown): Error {
  let inner = err;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  const type = inner instanceof ApplicationFailure ? inner.type : undefined;
  const message = failureMessage(err);
  if (type === 'InvalidRepository') return new BadInputError(message, { cause: err });
  if (type === 'RepositoryNotFound' || type === 'RepositoryNotAllowed') return new NotFoundError(message, { cause: err });
  if (inner instanceof TimeoutFailure) return new UnavailableError(message, { cause: err });
  return new Error(message, { cause: err });
}

/** The graph view of what the worker read: edges with their output mappings, dependents, dependency order. */
export function projectGraph(read: OperatorProjectsResult): ProjectGraph {
  const byName = new Map(read.projects.map((p) => [p.name, p]));
  const dag = buildDag(read.projects.map((p) => ({ name: p.name, dependsOn: p.dependsOn })));
  // The parser refuses cycles; should one get through, the file's order is kept.
  const order = dag.ok ? dag.order : read.projects.map((p) => p.name);
  const edges: DependencyEdge[] = [];
  for (const name of order) {
    const project = byName.get(name)!;
    for (const upstream of project.dependsOn) {
      const outputs = Object.entries(project.inputs)
        .filter(([, ref]) => ref.project === upstream)
        .map(([variable, ref]) => ({ output: ref.output, variable }));
      edges.push({ from: upstream, to: name, outputs });
    }
  }
  const projects = order.map((name): ProjectView => {
    const p = byName.get(name)!;
    return {
      name: p.name,
      dir: p.dir,
      workspace: p.workspace,
      terraform: p.terraform,
      apply: p.apply,
      dependsOn: p.dependsOn,
      dependents: edges.filter((e) => e.from === name).map((e) => e.to),
      ...(p.drift ? { drift: { schedule: p.drift.schedule, reconcile: p.drift.reconcile } } : {}),
    };
  });
  return {
    repository: read.repository,
    ...(read.defaultBranch ? { defaultBranch: read.defaultBranch } : {}),
    sha: read.sha,
    projects,
    edges,
    ...(read.configErrors?.length ? { configErrors: read.configErrors } : {}),
  };
}

/**
 * Without a worker polling the task queue the read would wait for its timeout: say so at once. Temporal
 * lists the pollers of the last few minutes.
 */
async function requireWorker(deps: ProjectsDeps): Promise<void> {
  const described = await deps.client.workflowService.describeTaskQueue({
    namespace: deps.client.options.namespace,
    taskQueue: { name: deps.taskQueue },
    // TASK_QUEUE_TYPE_WORKFLOW (the enum lives in @temporalio/proto, not a dependency of ours).
    taskQueueType: 1,
  });
  if (!described.pollers?.length) {
    throw new UnavailableError(`No Terrapin worker is polling task queue "${deps.taskQueue}": start one (npm start, or npm run worker)`);
  }
}

/** The reason a read failed, in one line: the innermost failure's message, not the chain of wrappers around it. */
export function failureMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let inner: Error = err;
  while (inner.cause instanceof Error) inner = inner.cause;
  if (inner instanceof TimeoutFailure) return `The Terrapin worker did not answer within ${READ_TIMEOUT}`;
  return inner.message;
}
