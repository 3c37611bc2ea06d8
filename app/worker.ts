// The Temporal worker: runs every Terrapin workflow (PR, project runs, deploys, drift, locks, pushes) and every
// activity. `npm run worker` runs it alone (with TEMPORAL_ADDRESS in production); app/main.ts runs it next to the webhook server.
import { fileURLToPath } from 'node:url';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createActivities } from '../activities/index.ts';
import type { Logger } from './logger.ts';
import { runEntry } from './process-lifecycle.ts';
import { connectTemporal, installTemporalRuntime, type TemporalHandle } from './temporal.ts';
import { ConfigError, type ServerConfig } from './config.ts';
import { startWebhookReconciler } from './webhook-reconcile-schedule.ts';
import type { Client } from '@temporalio/client';
import { describeSandbox, resolveSandbox, SandboxUnavailableError, type Sandbox } from '../activities/sandbox.ts';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * Cancellation reaches an activity only with a heartbeat reply, and the SDK otherwise batches
 * heartbeats for up to 80% of the heartbeat timeout: a superseded plan would run on for ~24 s.
 */
export const HEARTBEAT_TUNING = {
  maxHeartbeatThrottleInterval: '2 seconds',
  defaultHeartbeatThrottleInterval: '2 seconds',
} as const;

export interface CreateWorkerOptions {
  nativeConnection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: object;
  logger: Logger;
  /** The clients' data converter (payload encryption): a worker must encode and decode exactly as they do. */
  dataConverter?: DataConverter;
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  installTemporalRuntime(opts.logger);
  return Worker.create({
    connection: opts.nativeConnection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: opts.activities,
    dataConverter: opts.dataConverter,
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
}): Promise<() => Promise<void>> {
  const { config, logger } = opts;
  const sandbox = await startupSandbox(config, logger);
  const worker = await createWorker({
    nativeConnection: opts.temporal.nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    activities: createActivities({ config, logger, temporal: opts.temporal.client, sandbox }),
    logger,
    dataConverter: opts.temporal.client.options.dataConverter,
  });
  const running = worker.run();
  running.catch((err: unknown) => opts.onCrash?.(err));
  return async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
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
    onStop(await runTerrapinWorker({ config, logger, temporal, onCrash: (err) => fail(err, 'worker') }));
    await startReconciler(config, temporal.client, logger);
    logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker running');
  });
}
