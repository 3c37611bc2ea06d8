// The Temporal worker: runs the PR workflow and Terrapin's activities. `npm run worker` runs it alone
// (with TEMPORAL_ADDRESS in production); app/main.ts runs it next to the webhook server.
import { fileURLToPath } from 'node:url';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import type { Logger } from './logger.ts';
import { runEntry } from './process-lifecycle.ts';
import { connectTemporal, installTemporalRuntime } from './temporal.ts';

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
  });
}

if (import.meta.main) {
  await runEntry(async ({ config, logger, onStop, fail }) => {
    const temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    onStop(() => temporal.close());
    if (temporal.embedded) {
      logger.warn({ address: temporal.address }, 'TEMPORAL_ADDRESS is not set: this worker started its own embedded Temporal server');
    }
    const worker = await createWorker({
      nativeConnection: temporal.nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      activities: createActivities({ config, logger }),
      logger,
    });
    const running = worker.run();
    running.catch((err: unknown) => fail(err, 'worker'));
    onStop(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
    });
    logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker running');
  });
}
