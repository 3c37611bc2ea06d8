// Terrapin's Prometheus metrics: one registry per process (`npm start` runs server and worker in one process and
// so serves one endpoint). Every label takes its value from a fixed set: no PR numbers, SHAs, delivery ids or
// repository names, whatever a webhook carries.
import { basename } from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

/** Workflow types whose running count an operator watches (deploy queues, locks held, approvals waiting, open PRs). */
export const WATCHED_WORKFLOW_TYPES = ['prWorkflow', 'deployWorkflow', 'lockWorkflow', 'operatorRunWorkflow', 'driftReconcileWorkflow', 'projectRun'] as const;
/** Visibility counts are cached this long: a scrape every few seconds costs one count per type per interval. */
const VISIBILITY_CACHE_MS = 15_000;

interface WorkflowCounter {
  count(query: string): Promise<{ count: number }>;
}

let countSource: WorkflowCounter | undefined;

/**
 * `terrapin_workflows_running{type}` from Temporal visibility, computed on scrape and cached. Deploy queues,
 * held locks and approvals waiting (operator runs behind a gate issue) are each one running workflow.
 * The first client given wins (one per process).
 */
export function watchWorkflows(client: { workflow: WorkflowCounter }): void {
  countSource ??= client.workflow;
}

let cached: { at: number; counts: Map<string, number> } | undefined;

async function runningCounts(): Promise<Map<string, number>> {
  if (cached && Date.now() - cached.at < VISIBILITY_CACHE_MS) return cached.counts;
  const counts = new Map<string, number>();
  await Promise.all(
    WATCHED_WORKFLOW_TYPES.map(async (type) => {
      const { count } = await withTimeout(countSource!.count(`WorkflowType = '${type}' AND ExecutionStatus = 'Running'`), 3_000);
      counts.set(type, count);
    }),
  );
  cached = { at: Date.now(), counts };
  return counts;
}

/** A scrape must not hang on an unreachable Temporal. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Temporal visibility did not answer in time')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const workflowsRunning = new Gauge({
  name: 'terrapin_workflows_running',
  help: 'Running workflows by type, from Temporal visibility (cached 15 s): deployWorkflow = active deploy queues, lockWorkflow = project locks held (a free lock ends its workflow), operatorRunWorkflow = operator requests in progress (mostly waiting for approval), prWorkflow = open PRs.',
  labelNames: ['type'] as const,
  registers: [registry],
  async collect() {
    if (!countSource) return;
    try {
      for (const [type, count] of await runningCounts()) this.set({ type }, count);
    } catch {
      // Temporal unreachable: the gauge goes stale-free (reset) rather than showing old counts; /readyz says why.
      this.reset();
    }
  },
});
