// Where each project of a repository stands: its last apply or deploy, plans waiting for approval on open PRs,
// the lock holder, the deploy queue, and drift. Read from the run records (visibility) and by asking the
// workflows that hold the live state (queries: PR, lock, deploy); the drift issue from GitHub when the App's
// credentials are here.
import type { Client } from '@temporalio/client';
import {
  DEPLOY_WORKFLOW_TYPE,
  LOCK_WORKFLOW_TYPE,
  PR_WORKFLOW_TYPE,
  deployStateQuery,
  deployWorkflowId,
  lockHolderQuery,
  lockQueueQuery,
  parsePrWorkflowId,
  prStateQuery,
  type DeployStatus,
  type LockHolder,
  type PrStatus,
} from '../shared/contracts.ts';
import { SEARCH_ATTRIBUTES } from '../shared/records.ts';
import { PROJECT_RUN_WORKFLOW_TYPE, type RunInput } from '../shared/runs.ts';
import { BadInputError, NotFoundError, lastRun, type RunSummary } from './records.ts';
import { relativeTime } from './time.ts';

export interface PendingPlan {
  pr: number;
  url: string;
  /** The PR head the plan was made at. */
  revision: string;
  summary: string;
  approvals: string[];
}

export interface LockState {
  lockId: string;
  holder: { pr: number; url: string } | null;
  waiting: Array<{ pr: number; url: string }>;
}

export interface DeployQueue {
  deployed: string | null;
  current: { revision: string; phase: string } | null;
  queued: string[];
}

export type DriftIssue = { number: number; url: string } | null | 'unknown';

export interface ProjectStatus {
  repository: string;
  project: string;
  /** The newest apply or destroy (from a PR, a deploy after merge or push, or an operator). */
  lastApply: RunSummary | null;
  pendingPlans: PendingPlan[];
  /** null: nobody holds it (or no lock workflow runs for the project). */
  lock: LockState | null;
  /** null: no deploy queue runs for the project. */
  deployQueue: DeployQueue | null;
  drift: {
    lastCheck: RunSummary | null;
    /** The open drift issue; null: none open; 'unknown': no GitHub credentials here. */
    issue: DriftIssue;
  };
  /** One line: "last applied 2 hours ago by alice, approved by bob, no pending changes, no drift". */
  summary: string;
  /** What could not be read (a workflow that did not answer); the rest is still right. */
  warnings: string[];
}

export interface StatusOptions {
  repository: string;
  /** Only this project (else every project the records know for the repository). */
  project?: string;
  /** https://github.com or the GHE web URL, for links. */
  webUrl?: string;
  /** Open drift issues by project, when GitHub can be read; undefined → 'unknown'. */
  driftIssues?: (repository: string) => Promise<Map<string, { number: number; url: string }>>;
  now?: Date;
  /** How long a workflow gets to answer a query (its worker may be down). */
  queryTimeoutMs?: number;
}

export interface RepositoryStatus {
  repository: string;
  projects: ProjectStatus[];
  /** Locks whose project could not be told (no run of theirs in the records). */
  otherLocks: LockState[];
}

const k = SEARCH_ATTRIBUTES;
const q = (value: string) => {
  if (/['"\\\n]/.test(value)) throw new BadInputError(`quotes and backslashes are not allowed ("${value}")`);
  return `'${value}'`;
};

/**
 * The projects a repository's records know, newest first. Visibility has no DISTINCT: each query reads one
 * page of the newest runs of projects not found yet, until one finds none (usually two or three queries).
 */
export async function knownProjects(client: Client, repository: string, pageSize = 200): Promise<string[]> {
  const found: string[] = [];
  for (;;) {
    const exclude = found.length ? ` AND ${k.project.name} NOT IN (${found.map(q).join(', ')})` : '';
    const query = `WorkflowType = '${PROJECT_RUN_WORKFLOW_TYPE}' AND ${k.repository.name} = ${q(repository)}${exclude}`;
    const before = found.length;
    let seen = 0;
    for await (const info of client.workflow.list({ query, pageSize })) {
      const project = info.typedSearchAttributes.get(k.project);
      if (project && !found.includes(project)) found.push(project);
      if (++seen >= pageSize) break;
    }
    if (found.length === before) return found;
  }
}

export async function repositoryStatus(client: Client, opts: StatusOptions): Promise<RepositoryStatus> {
  const { repository } = opts;
  const [owner, name] = repository.split('/') as [string, string];
  const projects = opts.project ? [opts.project] : await knownProjects(client, repository);
  if (projects.length === 0) throw new NotFoundError(`no runs recorded for ${repository} (check the name; Terrapin records a project once it has run there)`);
  const webUrl = opts.webUrl ?? 'https://github.com';
  const prUrl = (n: number) => `${webUrl}/${repository}/pull/${n}`;
  const timeout = opts.queryTimeoutMs ?? 5000;
  const warnings: string[] = [];
  /** Asks a workflow (its worker may be down): a silence is a warning, not a failed status. */
  const askInto =
    (list: string[]): Ask =>
    async (what, fn) => {
      try {
        return await client.withDeadline(Date.now() + timeout, fn);
      } catch (err) {
        list.push(`${what} did not answer (${(err instanceof Error ? err.message : String(err)).split('\n')[0]})`);
        return undefined;
      }
    };
  const ask = askInto(warnings);

  // Repository-wide, once: open PRs' plans, the locks, the drift issues.
  const [prs, locks, deploying, driftIssues] = await Promise.all([
    openPrStates(client, owner, name, ask),
    lockStates(client, owner, name, ask, prUrl),
    runningIds(client, DEPLOY_WORKFLOW_TYPE, `deploy:${owner}/${name}:`),
    opts.driftIssues ? opts.driftIssues(repository) : Promise.resolve(undefined),
  ]);
  const lockOwners = await lockProjects(client, repository, projects, locks);

  const statuses = await mapLimit(projects, 8, async (project): Promise<ProjectStatus> => {
    const mine: string[] = [];
    const [lastApply, lastCheck, deployQueue] = await Promise.all([
      lastRun(client, { repository, project, kinds: ['apply', 'destroy'] }),
      lastRun(client, { repository, project, kinds: ['drift'] }),
      deploying.includes(deployWorkflowId({ owner, name }, project)) ? deployQueueOf(client, { owner, name }, project, askInto(mine)) : null,
    ]);
    if (opts.project && !lastApply && !lastCheck) {
      const any = await lastRun(client, { repository, project });
      if (!any) throw new NotFoundError(`no runs recorded for project ${project} in ${repository}`);
    }
    const pendingPlans = prs
      .filter(({ state }) => state.plan?.status === 'ready' && (state.plan.projects ?? []).some((p) => p.name === project))
      .map(({ pr, state }) => ({ pr, url: prUrl(pr), revision: state.plan!.sha, summary: state.plan!.summary, approvals: state.approvals }));
    const lockId = [...lockOwners.entries()].find(([, p]) => p === project)?.[0];
    const lock = lockId ? locks.find((l) => l.lockId === lockId) ?? null : null;
    const issue: DriftIssue = driftIssues ? driftIssues.get(project) ?? null : 'unknown';
    const status: Omit<ProjectStatus, 'summary'> = {
      repository,
      project,
      lastApply: lastApply ?? null,
      pendingPlans,
      lock,
      deployQueue,
      drift: { lastCheck: lastCheck ?? null, issue },
      warnings: mine,
    };
    return { ...status, summary: summaryLine(status, opts.now ?? new Date()) };
  });
  for (const s of statuses) s.warnings.push(...warnings);
  const claimed = new Set(lockOwners.keys());
  return { repository, projects: statuses, otherLocks: locks.filter((l) => !claimed.has(l.lockId)) };
}

type Ask = <T>(what: string, fn: () => Promise<T>) => Promise<T | undefined>;

const prefixQuery = (type: string, prefix: string) => `WorkflowType = '${type}' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH ${q(prefix)}`;

/** Ids of the running workflows of a type whose ids start with the prefix. */
async function runningIds(client: Client, type: string, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const info of client.workflow.list({ query: prefixQuery(type, prefix), pageSize: 1000 })) ids.push(info.workflowId);
  return ids;
}

async function openPrStates(client: Client, owner: string, name: string, ask: Ask): Promise<Array<{ pr: number; state: PrStatus }>> {
  const ids = await runningIds(client, PR_WORKFLOW_TYPE, `pr:${owner}/${name}#`);
  const states = await mapLimit(ids, 8, async (id) => {
    const state = await ask(`PR workflow ${id}`, () => client.workflow.getHandle(id).query(prStateQuery));
    const ref = parsePrWorkflowId(id);
    return state && ref ? { pr: ref.number, state } : undefined;
  });
  return states.filter((s): s is { pr: number; state: PrStatus } => s !== undefined);
}

async function lockStates(client: Client, owner: string, name: string, ask: Ask, prUrl: (n: number) => string): Promise<LockState[]> {
  const ids = await runningIds(client, LOCK_WORKFLOW_TYPE, `lock:${owner}/${name}:`);
  const states = await mapLimit(ids, 8, async (lockId) => {
    const handle = client.workflow.getHandle(lockId);
    const [holder, waiting] = await Promise.all([
      ask<LockHolder | undefined>(`lock ${lockId}`, () => handle.query(lockHolderQuery)),
      ask<LockHolder[]>(`lock ${lockId}`, () => handle.query(lockQueueQuery)),
    ]);
    const link = (h: LockHolder) => ({ pr: h.pr, url: prUrl(h.pr) });
    return { lockId, holder: holder ? link(holder) : null, waiting: (waiting ?? []).map(link) };
  });
  return states.filter((l) => l.holder || l.waiting.length);
}

/**
 * Which project each lock is (lock ids name a dir and workspace, not a project): the dir and workspace the
 * project's newest run worked in, read from that run's input.
 */
async function lockProjects(client: Client, repository: string, projects: string[], locks: LockState[]): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  if (locks.length === 0) return owners;
  await mapLimit(projects, 8, async (project) => {
    const run = await lastRun(client, { repository, project });
    const input = run ? await runInput(client, run.runId) : undefined;
    if (!input) return;
    const lockId = `lock:${repository}:${input.project.dir}:${input.project.workspace}`;
    if (locks.some((l) => l.lockId === lockId)) owners.set(lockId, project);
  });
  return owners;
}

/** A run's input, from the first event of its history (one small page). */
async function runInput(client: Client, workflowId: string): Promise<RunInput | undefined> {
  const response = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId },
    maximumPageSize: 1,
  });
  const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) return undefined;
  return client.options.loadedDataConverter.payloadConverter.fromPayload<RunInput>(payload);
}

async function deployQueueOf(client: Client, repo: { owner: string; name: string }, project: string, ask: Ask): Promise<DeployQueue | null> {
  const id = deployWorkflowId(repo, project);
  const state = await ask<DeployStatus>(`deploy queue ${id}`, () => client.workflow.getHandle(id).query(deployStateQuery));
  if (!state) return null;
  return {
    deployed: state.deployed ?? null,
    current: state.current ? { revision: state.current.sha, phase: state.current.phase } : null,
    queued: state.queued.filter((sha) => sha !== state.current?.sha),
  };
}

/** "last applied 2 hours ago by alice, approved by bob, no pending changes, no drift". */
export function summaryLine(s: Omit<ProjectStatus, 'summary'>, now: Date): string {
  const parts: string[] = [];
  const a = s.lastApply;
  if (!a) parts.push('never applied');
  else {
    const when = relativeTime(new Date(a.closedAt ?? a.startedAt), now);
    const verb = a.kind === 'destroy' ? 'destroyed' : 'applied';
    const by = a.actor ? ` by ${a.actor}` : '';
    if (a.status === 'running') parts.push(`${a.kind === 'destroy' ? 'destroying' : 'applying'} now${by}`);
    else if (a.outcome === 'applied' || a.outcome === 'destroyed') parts.push(`last ${verb} ${when}${by}`);
    else parts.push(`last ${a.kind ?? 'apply'} ${when}${by}: ${a.outcome}`);
    if (a.approvers.length) parts.push(`approved by ${a.approvers.join(', ')}`);
  }
  const pending = s.pendingPlans;
  parts.push(pending.length === 0 ? 'no pending changes' : `${pending.length} pending ${pending.length === 1 ? 'plan' : 'plans'} (${pending.map((p) => `#${p.pr}`).join(', ')})`);
  if (s.deployQueue?.current) parts.push(`deploying ${s.deployQueue.current.revision.slice(0, 7)} (${s.deployQueue.current.phase})`);
  if (s.deployQueue?.queued.length) parts.push(`${s.deployQueue.queued.length} queued to deploy`);
  if (s.lock?.holder) parts.push(`locked by #${s.lock.holder.pr}`);
  const check = s.drift.lastCheck;
  const issue = s.drift.issue;
  if (issue && issue !== 'unknown') parts.push(`drifted (issue #${issue.number})`);
  else if (!check) parts.push('drift never checked');
  else if (check.outcome === 'clean') parts.push('no drift');
  else if (check.outcome === 'drifted') parts.push(`drifted ${relativeTime(new Date(check.closedAt ?? check.startedAt), now)}`);
  else if (check.status === 'running') parts.push('drift check running');
  else parts.push(`drift check ${check.outcome}`);
  return parts.join(', ');
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}
