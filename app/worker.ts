// The Temporal worker: runs every Terrapin workflow (PR, project runs, deploys, drift, locks, pushes) and every
// activity. `npm run worker` runs it alone (with TEMPORAL_ADDRESS in production); app/main.ts runs it next to the webhook server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker, type ActivityInterceptorsFactory, type InjectedSinks, type NativeConnection, type WorkflowBundle } from '@temporalio/worker';
import { CancelledFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { activitiesFinished, activityLabel, activityRetries, observeRun, setKnownActivities, watchWorkflows, workerUp } from './metrics.ts';
import { opsHandler } from './http.ts';
import { RUN_METRICS_SINK, type RunMetricsSinks } from '../workflows/metrics-interceptor.ts';
import type { DataConverter } from '@temporalio/common';
import { createActivities } from '../activities/index.ts';
import type { Logger } from './logger.ts';
import { runEntry } from './process-lifecycle.ts';
import { connectTemporal, installTemporalRuntime, type TemporalHandle } from './temporal.ts';
import { ConfigError, type ServerConfig } from './config.ts';
import { startWebhookReconciler } from './webhook-reconcile-schedule.ts';
import { openArtifactStore } from '../activities/artifacts/index.ts';
import { bundleWorkflowsInChild } from './workflow-bundle.ts';
import { describeSandbox, resolveSandbox, SandboxUnavailableError, type Sandbox } from '../activities/sandbox.ts';

export { WORKFLOWS_PATH } from './workflow-bundle.ts';

/** Project runs' results reach the registry from workflow code only through this sink (never during replay). */
const runMetricsSinks: InjectedSinks<RunMetricsSinks> = {
  [RUN_METRICS_SINK]: { runFinished: { fn: (_info, kind, outcome, seconds) => observeRun(kind, outcome, seconds), callDuringReplay: false } },
};

/** Each activity attempt counted by type and outcome; attempts after the first are retries. */
const countActivities: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const activity = activityLabel(ctx.info.activityType);
      if (ctx.info.attempt > 1) activityRetries.inc({ activity });
      try {
        const result = await next(input);
        activitiesFinished.inc({ activity, outcome: 'ok' });
        return result;
      } catch (err) {
        activitiesFinished.inc({ activity, outcome: err instanceof CancelledFailure ? 'cancelled' : 'error' });
        throw err;
      }
    },
  },
});

/**
 * Cancellation reaches an activity only with a heartbeat reply, and the SDK otherwise batches
 * heartbeats for up to 80% of the heartbeat timeout: a superseded plan would run on for ~24 s.
 */
export const HEARTBEAT_TUNING = {
  maxHeartbeatThrottleInterval: '2 seconds',
  defaultHeartbeatThrottleInterval: '2 seconds',
} as const;

export function maxCachedWorkflows(env: Record<string, string | undefined> = process.env): number | undefined {
  const value = env.TERRAPIN_MAX_CACHED_WORKFLOWS?.trim();
  if (!value) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`TERRAPIN_MAX_CACHED_WORKFLOWS must be a whole number, got "${value}"`);
  return n;
}

export interface CreateWorkerOptions {
  nativeConnection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: object;
  logger: Logger;
  /** The clients' data converter (payload encryption): a worker must encode and decode exactly as they do. */
  dataConverter?: DataConverter;
  /** The workflow code (with the metrics interceptor); default: bundled now, in a child process (app/workflow-bundle.ts). */
  workflowBundle?: WorkflowBundle;
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  installTemporalRuntime(opts.logger);
  setKnownActivities(Object.keys(opts.activities));
  return Worker.create({
    connection: opts.nativeConnection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    workflowBundle: opts.workflowBundle ?? (await bundleWorkflowsInChild()),
    activities: opts.activities,
    dataConverter: opts.dataConverter,
    interceptors: { activity: [countActivities] },
    sinks: runMetricsSinks,
    maxCachedWorkflows: maxCachedWorkflows(),
    ...HEARTBEAT_TUNING,
    // On SIGTERM, running terraform gets this long to finish before it is cancelled: a deploy or restart
    // should not turn an apply into one whose outcome is unknown.
    shutdownGraceTime: '2 minutes',
  });
}

/**
 * Creates Terrapin's worker (every workflow type and activity) on this connection and runs it.
 * Returns the function that stops it; `onCrash` hears of a worker that stopped on its own.
 */
export async function runTerrapinWorker(opts: {
  config: ServerConfig;
  logger: Logger;
  temporal: Pick<TemporalHandle, 'nativeConnection' | 'client'>;
  onCrash?: (err: unknown) => void;
}): Promise<RunningWorker> {
  const { config, logger } = opts;
  const sandbox = await startupSandbox(config, logger);
  // One store (a PostgreSQL pool) per worker; plans go there so that any worker can apply them.
  const artifacts = openArtifactStore(config.artifacts ?? { kind: 'filesystem' }, config.dataDir);
  logger.info({ artifacts: artifacts.describe }, 'artifact store');
  const worker = await createWorker({
    nativeConnection: opts.temporal.nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    activities: createActivities({ config, logger, temporal: opts.temporal.client, sandbox, artifacts }),
    logger,
    dataConverter: opts.temporal.client.options.dataConverter,
  }).catch(async (err: unknown) => {
    await artifacts.close();
    throw err;
  });
  watchWorkflows(opts.temporal.client);
  const running = worker.run();
  workerUp.set(1);
  running.catch((err: unknown) => opts.onCrash?.(err)).finally(() => workerUp.set(0));
  const stop = async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
    await artifacts.close();
  };
  return Object.assign(stop, { isRunning: () => worker.getState() === 'RUNNING' });
}

/** Stops the worker when called; `isRunning` says whether it is polling (for /readyz). */
export type RunningWorker = (() => Promise<void>) & { isRunning(): boolean };

/** TERRAPIN_METRICS_PORT: the port of a worker process's /metrics, /healthz and /readyz; `off` for none. */
export const DEFAULT_WORKER_METRICS_PORT = 9464;

export function workerMetricsPort(env: Record<string, string | undefined> = process.env): number | undefined {
  const value = env.TERRAPIN_METRICS_PORT?.trim();
  if (value === 'off') return undefined;
  if (!value) return DEFAULT_WORKER_METRICS_PORT;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`TERRAPIN_METRICS_PORT must be a port number or "off", got "${value}"`);
  return port;
}

/** A worker process's own listener for /metrics, /healthz and /readyz (the webhook server has its own). */
export async function startOpsListener(opts: { port: number; client: Client; worker: RunningWorker; logger: Logger }): Promise<{ port: number; close(): Promise<void> }> {
  const handle = opsHandler({ client: opts.client, workerRunning: opts.worker.isRunning });
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.error({ err }, 'metrics request failed');
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

/**
 * The webhook reconciler's Schedule (unless TERRAPIN_WEBHOOK_RECONCILE_INTERVAL=off), and one run now. A
 * failure here is logged, not fatal: webhooks still flow, and the next start tries again.
 */
export async function startReconciler(config: Pick<ServerConfig, 'webhookReconcileMinutes' | 'temporal'>, client: Client, logger: Logger): Promise<void> {
  if (!config.webhookReconcileMinutes) return;
  try {
    await startWebhookReconciler(client, { taskQueue: config.temporal.taskQueue, intervalMinutes: config.webhookReconcileMinutes });
    logger.info({ everyMinutes: config.webhookReconcileMinutes }, 'webhook reconciler scheduled');
  } catch (err) {
    logger.warn({ err }, 'could not schedule the webhook reconciler');
  }
}

/** Probes the sandbox once and says at start how repository code will run; `bubblewrap` that does not work stops the start. */
export async function startupSandbox(config: Pick<ServerConfig, 'operatorPolicy'>, logger: Logger, probe?: Parameters<typeof resolveSandbox>[1]): Promise<Sandbox> {
  let sandbox: Sandbox;
  try {
    sandbox = await resolveSandbox(config.operatorPolicy.runner, probe);
  } catch (err) {
    if (err instanceof SandboxUnavailableError) throw new ConfigError(err.message);
    throw err;
  }
  const { level, message } = describeSandbox(sandbox);
  logger[level]({ sandbox: sandbox.kind }, message);
  return sandbox;
}

if (import.meta.main) {
  await runEntry(async ({ config, logger, onStop, fail }) => {
    const temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    onStop(() => temporal.close());
    if (temporal.embedded) {
      logger.warn({ address: temporal.address }, 'TEMPORAL_ADDRESS is not set: this worker started its own embedded Temporal server');
    }
    const metricsPort = workerMetricsPort();
    const worker = await runTerrapinWorker({ config, logger, temporal, onCrash: (err) => fail(err, 'worker') });
    onStop(worker);
    await startReconciler(config, temporal.client, logger);
    if (metricsPort !== undefined) {
      const ops = await startOpsListener({ port: metricsPort, client: temporal.client, worker, logger });
      onStop(() => ops.close());
      logger.info({ port: ops.port, paths: ['/metrics', '/healthz', '/readyz'] }, 'worker metrics and probes listening');
    }
    logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker running');
  });
}
