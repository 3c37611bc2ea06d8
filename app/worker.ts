// The Temporal worker: runs every Terrapin workflow (PR, project runs, deploys, drift, locks, pushes) and every
// activity. `npm run worker` runs it alone (with TEMPORAL_ADDRESS in production); app/main.ts runs it next to the webhook server.
import { fileURLToPath } from 'node:url';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import type { Logger } from './logger.ts';
import { runEntry } from './process-lifecycle.ts';
import { connectTemporal, installTemporalRuntime, type TemporalHandle } from './temporal.ts';
import { ConfigError, type ServerConfig } from './config.ts';
import { openArtifactStore } from '../activities/artifacts/index.ts';
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
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  installTemporalRuntime(opts.logger);
  return Worker.create({
    connection: opts.nativeConnection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: opts.activities,
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
  // One store (a PostgreSQL pool) per worker; plans go there so that any worker can apply them.
  const artifacts = openArtifactStore(config.artifacts ?? { kind: 'filesystem' }, config.dataDir);
  logger.info({ artifacts: artifacts.describe }, 'artifact store');
  const worker = await createWorker({
    nativeConnection: opts.temporal.nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    activities: createActivities({ config, logger, temporal: opts.temporal.client, sandbox, artifacts }),
    logger,
  }).catch(async (err: unknown) => {
    await artifacts.close();
    throw err;
  });
  const running = worker.run();
  running.catch((err: unknown) => opts.onCrash?.(err));
  return async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
    await artifacts.close();
  };
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
    logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker running');
  });
}
