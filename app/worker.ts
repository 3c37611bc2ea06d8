// The Temporal worker: runs the PR workflow and Terrapin's activities. `npm run worker` runs it alone
// (with TEMPORAL_ADDRESS in production); app/main.ts runs it next to the webhook server.
import { fileURLToPath } from 'node:url';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { loadConfig } from './config.ts';
import type { Logger } from './logger.ts';
import { exitOnStartupFailure, loggerFor, stopOnSignals } from './process-lifecycle.ts';
import { connectTemporal, installTemporalRuntime, type TemporalHandle } from './temporal.ts';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

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
  });
}

async function main(): Promise<void> {
  let logger: Logger | undefined;
  let temporal: TemporalHandle | undefined;
  try {
    const config = loadConfig();
    logger = loggerFor(config);
    if (!config.temporal.address) logger.warn('TEMPORAL_ADDRESS is not set: this worker starts its own embedded Temporal server');
    temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    const worker = await createWorker({
      nativeConnection: temporal.nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      activities: createActivities({ config, logger }),
      logger,
    });
    const running = worker.run();
    const [log, connected] = [logger, temporal];
    running.catch(async (err: unknown) => {
      log.fatal({ err }, 'worker failed');
      await connected.close().catch(() => undefined);
      process.exit(1);
    });
    stopOnSignals(logger, async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connected.close();
    });
    logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker running');
  } catch (err) {
    await temporal?.close().catch(() => undefined);
    exitOnStartupFailure(err, logger);
  }
}

if (import.meta.main) await main();
