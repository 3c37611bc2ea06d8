// Terrapin's Prometheus metrics: one registry per process (`npm start` runs server and worker in one process and
// so serves one endpoint). Every label takes its value from a fixed set: no PR numbers, SHAs, delivery ids or
// repository names, whatever a webhook carries.
import { basename } from 'node:path';
import type { WorkflowClient } from '@temporalio/client';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DEPLOY_WORKFLOW_TYPE, LOCK_WORKFLOW_TYPE, deployStateQuery, lockQueueQuery } from '../shared/contracts.ts';
import { SEARCH_ATTRIBUTES, WAITING_APPROVAL } from '../shared/records.ts';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'terrapin_' });

/** The events Terrapin handles or expects; any other X-GitHub-Event value is counted as `other`. */
const GITHUB_EVENTS = new Set([
  'pull_request',
  'pull_request_review',
  'issue_comment',
  'check_run',
  'check_suite',
  'push',
  'installation',
  'installation_repositories',
  'ping',
]);
const TERRAFORM_COMMANDS = new Set(['init', 'plan', 'apply', 'show', 'output', 'workspace', 'validate', 'version', 'state', 'providers', 'fmt', 'destroy', 'refresh', 'force-unlock']);
const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']);

/** A value from `allowed`, else `other`. */
export function bounded(value: string | undefined, allowed: ReadonlySet<string>): string {
  return value !== undefined && allowed.has(value) ? value : 'other';
}

/** An enum-like value (lowercase word with dashes, as workflow outcomes are); anything else becomes `other`. */
export function enumLike(value: unknown): string {
  return typeof value === 'string' && /^[a-z][a-z-]{0,31}$/.test(value) ? value : 'other';
}

export const webhooksReceived = new Counter({
  name: 'terrapin_webhooks_total',
  help: 'Webhook deliveries answered, by GitHub event and outcome (accepted: 2xx; rejected: 4xx; failed: 5xx, GitHub may redeliver).',
  labelNames: ['event', 'outcome'] as const,
  registers: [registry],
});

export const webhookDuration = new Histogram({
  name: 'terrapin_webhook_duration_seconds',
  help: 'Time from a webhook request to its answer, by GitHub event.',
  labelNames: ['event'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

/** Counts a webhook answered with `status`. */
export function observeWebhook(event: string | undefined, status: number, seconds: number): void {
  const name = bounded(event, GITHUB_EVENTS);
  const outcome = status < 300 ? 'accepted' : status < 500 ? 'rejected' : 'failed';
  webhooksReceived.inc({ event: name, outcome });
  webhookDuration.observe({ event: name }, seconds);
}

export const signalsSent = new Counter({
  name: 'terrapin_signals_total',
  help: 'Deliveries passed to Temporal, by target workflow (pr, reconcile, deploy, gate, push) and outcome (signalled, started, duplicate, not-allowed, not-running, error).',
  labelNames: ['target', 'outcome'] as const,
  registers: [registry],
});

export const runsFinished = new Counter({
  name: 'terrapin_runs_total',
  help: 'Project runs finished, by kind (plan, apply, rollback, destroy, drift) and outcome.',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

export const runDuration = new Histogram({
  name: 'terrapin_run_duration_seconds',
  help: 'Duration of project runs (workflow start to result), by kind and outcome.',
  labelNames: ['kind', 'outcome'] as const,
  buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  registers: [registry],
});

const RUN_KINDS = new Set(['plan', 'apply', 'rollback', 'destroy', 'drift']);

/** A project run's result as the worker saw it (reported from the workflow through a sink). */
export function observeRun(kind: unknown, outcome: unknown, seconds: number): void {
  const labels = { kind: typeof kind === 'string' ? bounded(kind, RUN_KINDS) : 'other', outcome: enumLike(outcome) };
  runsFinished.inc(labels);
  runDuration.observe(labels, Math.max(0, seconds));
}

export const terraformDuration = new Histogram({
  name: 'terrapin_terraform_duration_seconds',
  help: 'Duration of terraform (or tofu) commands, by subcommand and outcome (ok: exit 0; error: non-zero exit or not run).',
  labelNames: ['command', 'outcome'] as const,
  buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
  registers: [registry],
});

/** Times `file args…` when it is terraform or tofu; any other command runs untimed. */
export async function timeTerraform<T extends { exitCode: number }>(file: string, args: readonly string[], run: () => Promise<T>): Promise<T> {
  if (!/^(terraform|tofu)/.test(basename(file))) return run();
  const end = terraformDuration.startTimer({ command: bounded(args[0], TERRAFORM_COMMANDS) });
  try {
    const result = await run();
    end({ outcome: result.exitCode === 0 ? 'ok' : 'error' });
    return result;
  } catch (err) {
    end({ outcome: 'error' });
    throw err;
  }
}

export const githubRequests = new Counter({
  name: 'terrapin_github_requests_total',
  help: 'GitHub API requests made by activities, by method and status class (2xx, 3xx, 4xx, 5xx, network).',
  labelNames: ['method', 'status'] as const,
  registers: [registry],
});

export const githubRateLimitRemaining = new Gauge({
  name: 'terrapin_github_rate_limit_remaining',
  help: 'x-ratelimit-remaining of the latest GitHub API answer, by rate-limit resource (core, graphql, search, …).',
  labelNames: ['resource'] as const,
  registers: [registry],
});

const RATE_LIMIT_RESOURCES = new Set(['core', 'graphql', 'search', 'code_search', 'integration_manifest', 'actions_runner_registration', 'scim', 'dependency_snapshots', 'code_scanning_upload', 'audit_log']);

/** One GitHub API answer (or failure without one). */
export function observeGithub(method: string, status: number | undefined, headers?: Record<string, string | number | undefined>): void {
  const statusClass = status ? `${Math.floor(status / 100)}xx` : 'network';
  githubRequests.inc({ method: bounded(method.toUpperCase(), HTTP_METHODS), status: statusClass });
  const remaining = Number(headers?.['x-ratelimit-remaining']);
  if (headers?.['x-ratelimit-remaining'] !== undefined && Number.isFinite(remaining)) {
    githubRateLimitRemaining.set({ resource: bounded(String(headers['x-ratelimit-resource'] ?? 'core'), RATE_LIMIT_RESOURCES) }, remaining);
  }
}

export const activityRetries = new Counter({
  name: 'terrapin_activity_retries_total',
  help: 'Activity attempts after the first (GitHub and terraform calls are retried by Temporal, not by the client), by activity type.',
  labelNames: ['activity'] as const,
  registers: [registry],
});

export const activitiesFinished = new Counter({
  name: 'terrapin_activities_total',
  help: 'Activity attempts finished on this worker, by activity type and outcome (ok, error, cancelled).',
  labelNames: ['activity', 'outcome'] as const,
  registers: [registry],
});

/** Activity types are the worker's own function names: bounded by the code, not by input. */
let knownActivities: ReadonlySet<string> = new Set();
export function setKnownActivities(names: Iterable<string>): void {
  knownActivities = new Set(names);
}
export const activityLabel = (type: string): string => bounded(type, knownActivities);

export const workerUp = new Gauge({
  name: 'terrapin_worker_polling',
  help: '1 while this process\'s Temporal worker is running (polling its task queue), else 0.',
  registers: [registry],
});

/** Where the Temporal Core runtime serves its own worker metrics (loopback only); appended to our exposition. */
let sdkMetricsUrl: string | undefined;
export function setSdkMetricsUrl(url: string | undefined): void {
  sdkMetricsUrl = url;
}

/** Terrapin's registry, then the Temporal SDK's worker metrics (temporal_*), as one Prometheus text exposition. */
export async function exposition(): Promise<string> {
  const own = await registry.metrics();
  if (!sdkMetricsUrl) return own;
  const sdk = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2_000) })
    .then((r) => (r.ok ? r.text() : ''))
    .catch(() => '');
  return sdk ? `${own}\n${sdk.trimEnd()}\n` : own;
}

/** Workflow types whose running count an operator watches (deploy queues, locks held, operator runs, open PRs). */
export const WATCHED_WORKFLOW_TYPES = ['prWorkflow', 'deployWorkflow', 'lockWorkflow', 'operatorRunWorkflow', 'driftReconcileWorkflow', 'projectRun'] as const;
/** Visibility counts and queue queries are cached this long: a scrape every few seconds costs one round per interval. */
const VISIBILITY_CACHE_MS = 15_000;
/** Each visibility call, and the queue queries together, must answer within this (a scrape must not hang). */
const TEMPORAL_TIMEOUT_MS = 3_000;
/** Queue workflows asked at once, and at most (one per project: a bound far above any installation's). */
const QUERY_CONCURRENCY = 8;
const QUERY_LIMIT = 2_000;

type WorkflowSource = Pick<WorkflowClient, 'count' | 'list' | 'getHandle'>;

let source: WorkflowSource | undefined;
let cacheMs = VISIBILITY_CACHE_MS;

/**
 * The gauges below are computed from Temporal on scrape and cached: `terrapin_workflows_running{type}` and
 * the approvals waiting from visibility counts, locks held from the running lock workflows, the deploy and lock
 * queue depths from each queue workflow's own state query. The first client given wins (one per process);
 * `cacheMs` is for tests.
 */
export function watchWorkflows(client: { workflow: WorkflowSource }, opts: { cacheMs?: number } = {}): void {
  source ??= client.workflow;
  if (opts.cacheMs !== undefined) cacheMs = opts.cacheMs;
}

/** `load` on the first call, then its answer (or failure) for `cacheMs`; callers at once share one call. */
function cachedFor<T>(load: (from: WorkflowSource) => Promise<T>): () => Promise<T> {
  let cached: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.value;
    const value = load(source!);
    cached = { at: Date.now(), value };
    return value;
  };
}

const running = (type: string) => `WorkflowType = '${type}' AND ExecutionStatus = 'Running'`;

const runningCounts = cachedFor(async (from) => {
  const counts = new Map<string, number>();
  await Promise.all(
    WATCHED_WORKFLOW_TYPES.map(async (type) => {
      const { count } = await withTimeout(from.count(running(type)), TEMPORAL_TIMEOUT_MS);
      counts.set(type, count);
    }),
  );
  return counts;
});

/** A scrape must not hang on an unreachable Temporal. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Temporal did not answer in time')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A labelled gauge's collect from Temporal: `fill` sets its samples; while Temporal does not answer it is
 * reset (no stale counts; /readyz says why), and with no client it is left alone.
 */
function labelledFromTemporal<L extends string>(fill: (gauge: Gauge<L>) => Promise<void>) {
  return async function collect(this: Gauge<L>) {
    if (!source) return;
    try {
      await fill(this);
    } catch {
      this.reset();
    }
  };
}

/** An unlabelled gauge's collect from Temporal: `read`'s number, or no sample while Temporal does not answer. */
function unlabelledFromTemporal(read: () => Promise<number>) {
  return async function collect(this: Gauge) {
    try {
      if (!source) throw new Error('no Temporal client');
      this.set(await read());
    } catch {
      noSample(this);
    }
  };
}

export const workflowsRunning = new Gauge({
  name: 'terrapin_workflows_running',
  help: 'Running workflows by type, from Temporal visibility (cached 15 s): deployWorkflow = deploy queues (one per project that ever deployed), lockWorkflow = project locks held (a free lock ends its workflow), operatorRunWorkflow = operator requests in progress, prWorkflow = open PRs (and merged ones following their deploys).',
  labelNames: ['type'] as const,
  registers: [registry],
  collect: labelledFromTemporal(async (gauge) => {
    for (const [type, count] of await runningCounts()) gauge.set({ type }, count);
  }),
});

/** The workflows that wait for approvals, as the `workflow` label names them. */
const APPROVING_WORKFLOWS = { pr: 'prWorkflow', deploy: 'deployWorkflow', operator: 'operatorRunWorkflow' } as const;

const approvalCounts = cachedFor(async (from) => {
  const entries = await Promise.all(
    Object.entries(APPROVING_WORKFLOWS).map(async ([label, type]) => {
      const { count } = await withTimeout(from.count(`${running(type)} AND ${SEARCH_ATTRIBUTES.waiting.name} = '${WAITING_APPROVAL}'`), TEMPORAL_TIMEOUT_MS);
      return [label, count] as const;
    }),
  );
  return entries;
});

export const approvalsWaiting = new Gauge({
  name: 'terrapin_approvals_waiting',
  help: 'Workflows waiting for an approval, from Temporal visibility (TerrapinWaiting, cached 15 s), by workflow: pr (an open PR whose current plan has changes not yet approved or applied), deploy (a deploy whose plan differs from the approved one), operator (an operator apply or destroy behind its gate issue). Absent while the search attribute is not registered.',
  labelNames: ['workflow'] as const,
  registers: [registry],
  collect: labelledFromTemporal(async (gauge) => {
    for (const [workflow, count] of await approvalCounts()) gauge.set({ workflow }, count);
  }),
});

/**
 * No sample at all (prom-client resets a gauge without labels to 0, which would read as "none held" while
 * Temporal does not answer); its HELP and TYPE lines stay.
 */
function noSample(gauge: Gauge): void {
  gauge.reset();
  const internal = gauge as unknown as { labelNames: string[]; hashMap: Record<string, unknown> };
  if (internal.labelNames.length === 0) internal.hashMap = {};
}

export const locksHeld = new Gauge({
  name: 'terrapin_locks_held',
  help: 'Project locks held (one lock workflow per project, running while held: a free lock ends it), from Temporal visibility (cached 15 s).',
  registers: [registry],
  collect: unlabelledFromTemporal(async () => (await runningCounts()).get('lockWorkflow') ?? 0),
});

interface QueueDepths {
  /** Revisions queued in deploy queues, the one deploying not counted. */
  deploy: number;
  /** PRs waiting in line for a lock, its holder not counted. */
  lock: number;
  /** Queue workflows that did not answer their state query in time (their queues are not in the sums). */
  unanswered: { deploy: number; lock: number };
}

/** The running workflows of a type (ids), at most QUERY_LIMIT. */
async function runningIds(from: WorkflowSource, type: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of from.list({ query: running(type), pageSize: 500 })) {
    ids.push(w.workflowId);
    if (ids.length >= QUERY_LIMIT) break;
  }
  return ids;
}

/** Asks each workflow for a number, a few at a time, all before `deadline`; the sum and how many did not answer. */
async function sumOf(ids: string[], ask: (workflowId: string) => Promise<number>, deadline: number): Promise<{ sum: number; unanswered: number }> {
  let sum = 0;
  let unanswered = 0;
  let next = 0;
  const lane = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      const left = deadline - Date.now();
      try {
        if (left <= 0) throw new Error('out of time');
        sum += await withTimeout(ask(id), left);
      } catch {
        // Not running any more (ended meanwhile), no worker to answer, or out of time.
        unanswered++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(QUERY_CONCURRENCY, ids.length) }, lane));
  return { sum, unanswered };
}

const queueDepths = cachedFor(async (from): Promise<QueueDepths> => {
  const [deployIds, lockIds] = await withTimeout(Promise.all([runningIds(from, DEPLOY_WORKFLOW_TYPE), runningIds(from, LOCK_WORKFLOW_TYPE)]), TEMPORAL_TIMEOUT_MS);
  const deadline = Date.now() + TEMPORAL_TIMEOUT_MS;
  const [deploy, lock] = await Promise.all([
    sumOf(deployIds, async (id) => (await from.getHandle(id).query(deployStateQuery)).queued.length, deadline),
    sumOf(lockIds, async (id) => (await from.getHandle(id).query(lockQueueQuery)).length, deadline),
  ]);
  return { deploy: deploy.sum, lock: lock.sum, unanswered: { deploy: deploy.unanswered, lock: lock.unanswered } };
});

export const deployQueueDepth = new Gauge({
  name: 'terrapin_deploy_queue_depth',
  help: 'Revisions waiting in deploy queues (all projects; the revision deploying now not counted), from each queue\'s state query (cached 15 s). Queues that did not answer are left out: see terrapin_queue_queries_unanswered.',
  registers: [registry],
  collect: unlabelledFromTemporal(async () => (await queueDepths()).deploy),
});

export const lockQueueDepth = new Gauge({
  name: 'terrapin_lock_queue_depth',
  help: 'PRs waiting in line for project locks (all locks; holders not counted), from each lock\'s state query (cached 15 s). Locks that did not answer are left out: see terrapin_queue_queries_unanswered.',
  registers: [registry],
  collect: unlabelledFromTemporal(async () => (await queueDepths()).lock),
});

export const queueQueriesUnanswered = new Gauge({
  name: 'terrapin_queue_queries_unanswered',
  help: 'Deploy queues and locks that did not answer their state query at the last count (no worker polling, or too slow): the queue depth gauges miss them.',
  labelNames: ['workflow'] as const,
  registers: [registry],
  collect: labelledFromTemporal(async (gauge) => {
    const { unanswered } = await queueDepths();
    gauge.set({ workflow: 'deploy' }, unanswered.deploy);
    gauge.set({ workflow: 'lock' }, unanswered.lock);
  }),
});
