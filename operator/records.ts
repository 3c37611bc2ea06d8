// The run records, read back: every project run (workflows/project-run.ts) is a `projectRun` workflow whose
// search attributes (shared/records.ts) say what ran, for whom, and how it ended. History is a visibility
// query over them; a run's details and log come from its workflow (result, memo) and, where this machine
// shares the worker's data dir, from the files it wrote.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../shared/records.ts';
import { PROJECT_RUN_WORKFLOW_TYPE, RUN_LOG_TAIL_BYTES, RUN_LOG_TAIL_MEMO, liveLogFile, runLogFile, type RunKind, type RunResult } from '../shared/runs.ts';

export const RUN_KINDS: readonly RunKind[] = ['plan', 'apply', 'rollback', 'destroy', 'drift'];

import { BadInputError, NotFoundError } from './errors.ts';

export { BadInputError, NotFoundError } from './errors.ts';

export interface RunSummary {
  /** The run's id: run:{owner}/{repo}:{project}:{kind}:{sha7}-{n}. */
  runId: string;
  repository: string | null;
  project: string | null;
  kind: RunKind | null;
  trigger: string | null;
  pr: number | null;
  actor: string | null;
  approvers: string[];
  /** The commit the run checked out. */
  revision: string | null;
  /** The record's outcome (applied, planned, drifted, …); 'running' while it runs, else the workflow's end. */
  outcome: string;
  /** The workflow's status: running, completed, failed, terminated, cancelled, timed-out. */
  status: string;
  startedAt: string;
  closedAt: string | null;
  /** Resource counts of the run's plan (+ add, ~ change, − destroy); null when it made none. */
  counts: { add: number; change: number; destroy: number } | null;
}

export interface RunFilter {
  repository?: string;
  project?: string;
  kinds?: readonly RunKind[];
  /** Only runs started at or after this time. */
  since?: Date;
  /** Only runs in these outcomes (record outcome values). */
  outcomes?: readonly string[];
}

const quoteValue = (field: string, value: string): string => {
  // Names come from the user; a quote or backslash could change the query's meaning, and none is legitimate.
  if (/['"\\\n]/.test(value)) throw new BadInputError(`${field}: quotes and backslashes are not allowed ("${value}")`);
  return `'${value}'`;
};

/** The visibility query for a filter, over projectRun workflows only. */
export function runsQuery(filter: RunFilter): string {
  const k = SEARCH_ATTRIBUTES;
  const parts = [`WorkflowType = '${PROJECT_RUN_WORKFLOW_TYPE}'`];
  if (filter.repository) parts.push(`${k.repository.name} = ${quoteValue('repository', filter.repository)}`);
  if (filter.project) parts.push(`${k.project.name} = ${quoteValue('project', filter.project)}`);
  if (filter.kinds?.length) {
    const unknown = filter.kinds.filter((kind) => !RUN_KINDS.includes(kind));
    if (unknown.length) throw new BadInputError(`kind: unknown ${unknown.join(', ')} (one of ${RUN_KINDS.join(', ')})`);
    parts.push(`${k.kind.name} IN (${filter.kinds.map((kind) => `'${kind}'`).join(', ')})`);
  }
  if (filter.outcomes?.length) parts.push(`${k.outcome.name} IN (${filter.outcomes.map((o) => quoteValue('outcome', o)).join(', ')})`);
  if (filter.since) parts.push(`StartTime >= '${filter.since.toISOString()}'`);
  return parts.join(' AND ');
}

/** A run's summary from its visibility record (or its description: the same fields). */
export function runSummary(info: Pick<WorkflowExecutionInfo, 'workflowId' | 'status' | 'startTime' | 'closeTime' | 'typedSearchAttributes'>): RunSummary {
  const a = info.typedSearchAttributes;
  const k = SEARCH_ATTRIBUTES;
  const status = info.status.name.toLowerCase().replace(/_/g, '-');
  const add = a.get(k.add);
  const change = a.get(k.change);
  const destroy = a.get(k.destroy);
  const pr = a.get(k.pr);
  return {
    runId: info.workflowId,
    repository: a.get(k.repository) ?? null,
    project: a.get(k.project) ?? null,
    kind: (a.get(k.kind) as RunKind | undefined) ?? null,
    trigger: a.get(k.trigger) ?? null,
    pr: pr ? Number(pr) : null,
    actor: a.get(k.actor) ?? null,
    approvers: a.get(k.approvers) ?? [],
    revision: a.get(k.headSha) ?? null,
    outcome: a.get(k.outcome) ?? status,
    status,
    startedAt: info.startTime.toISOString(),
    closedAt: info.closeTime ? info.closeTime.toISOString() : null,
    counts: add === undefined && change === undefined && destroy === undefined ? null : { add: add ?? 0, change: change ?? 0, destroy: destroy ?? 0 },
  };
}

/**
 * Runs newest first (running ones, then by end time: the visibility store's order), fetching only the pages
 * `limit` needs.
 */
export async function listRuns(client: Client, filter: RunFilter, limit: number): Promise<RunSummary[]> {
  const runs: RunSummary[] = [];
  if (limit <= 0) return runs;
  const pageSize = Math.min(limit, 1000);
  for await (const info of client.workflow.list({ query: runsQuery(filter), pageSize })) {
    runs.push(runSummary(info));
    if (runs.length >= limit) break;
  }
  return runs;
}

/** The newest run matching a filter, if any. */
export async function lastRun(client: Client, filter: RunFilter): Promise<RunSummary | undefined> {
  return (await listRuns(client, filter, 1))[0];
}

export interface RunDetail extends RunSummary {
  /** The run's result once it completed (paths on the worker's disk, outcome, plan summary). */
  result: RunResult | null;
  /** Why the workflow itself failed (not a failed terraform step: that is a result). */
  error: string | null;
  /** The end of its log, kept in the run's memo. */
  logTail: LogTailMemo | null;
}

export interface LogTailMemo {
  file: string;
  text: string;
  truncated: boolean;
}

export async function getRun(client: Client, runId: string): Promise<RunDetail> {
  const handle = client.workflow.getHandle(runId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`no run ${runId}`);
    throw err;
  }
  if (description.type !== PROJECT_RUN_WORKFLOW_TYPE) throw new NotFoundError(`${runId} is not a Terrapin run (it is a ${description.type})`);
  const summary = runSummary(description);
  let result: RunResult | null = null;
  let error: string | null = null;
  if (description.status.name === 'COMPLETED') result = (await handle.result()) as RunResult;
  else if (description.status.name !== 'RUNNING') {
    error = await handle.result().then(
      () => null,
      (err: unknown) => rootMessage(err),
    );
  }
  const memo = description.memo?.[RUN_LOG_TAIL_MEMO] as LogTailMemo | undefined;
  return { ...summary, result, error, logTail: memo ?? null };
}

function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e === 'object' && e.cause) e = e.cause as typeof e;
  return e?.message ?? String(err);
}

export interface RunLog {
  run: RunDetail;
  /** Where the log is on the worker's disk. */
  file: string | null;
  /** 'file': the whole log, read here; 'tail': only the end recorded in Temporal; 'none': nothing to show yet. */
  source: 'file' | 'tail' | 'none';
  text: string;
  /** Said to the reader when the log is not whole, or not there. */
  note: string | null;
}

/**
 * A run's log: the whole file when this machine shares the worker's data dir, else the tail the run kept.
 * Files are read only inside the data dir (paths come from the run's result).
 */
export async function runLog(client: Client, dataDir: string, runId: string): Promise<RunLog> {
  const run = await getRun(client, runId);
  if (run.status === 'running') {
    const live = liveLogFile(dataDir, runId);
    const sofar = await readDataFile(dataDir, live);
    if (sofar) return { run, file: live, source: 'file', text: sofar, note: 'the run is still going: its output so far (--follow streams the rest)' };
    return { run, file: null, source: 'none', text: '', note: 'the run is still going: its log is saved when its terraform steps end (use --follow)' };
  }
  const file = run.result ? runLogFile(run.result) ?? null : run.logTail?.file ?? null;
  if (!file) return { run, file: null, source: 'none', text: '', note: run.error ? `the run failed before writing a log: ${run.error}` : 'the run wrote no log' };
  const whole = await readDataFile(dataDir, file);
  if (whole !== undefined) return { run, file, source: 'file', text: whole, note: null };
  if (run.logTail) {
    const note = run.logTail.truncated
      ? `full log on the worker's disk (${file}); this is the last ${RUN_LOG_TAIL_BYTES / 1024} KB`
      : `log from the run's record (the file is on the worker's disk: ${file})`;
    return { run, file, source: 'tail', text: run.logTail.text, note };
  }
  return { run, file, source: 'none', text: '', note: `the log is on the worker's disk (${file}) and the run recorded no tail` };
}

async function readDataFile(dataDir: string, file: string): Promise<string | undefined> {
  const rel = relative(resolve(dataDir), resolve(file));
  if (rel.startsWith('..') || isAbsolute(rel)) return undefined;
  try {
    const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await handle.stat()).isFile()) return undefined;
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}
export { knownProjects, repositoryStatus, summaryLine, type ProjectStatus, type RepositoryStatus } from './status.ts';
