// Everything in one process (`npm start`): Temporal (embedded dev server, or the cluster at TEMPORAL_ADDRESS),
// the worker and the webhook server. SIGINT/SIGTERM stop them in reverse order, dev server last.
import { createActivities } from '../activities/index.ts';
import { loadConfig } from './config.ts';
import { startWebhookServer } from './http.ts';
import type { Logger } from './logger.ts';
import { exitOnStartupFailure, loggerFor, stopOnSignals } from './process-lifecycle.ts';
import { connectTemporal, installTemporalRuntime } from './temporal.ts';
import { createWorker } from './worker.ts';

async function main(): Promise<void> {
  let logger: Logger | undefined;
  // Stops run newest first; filled as each part comes up, so a failed start still stops what began.
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    const config = loadConfig();
    logger = loggerFor(config);
    installTemporalRuntime(logger);
    const temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    stops.push(() => temporal.close());

    const worker = await createWorker({
      nativeConnection: temporal.nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      activities: createActivities({ config, logger }),
      logger,
    });
    const running = worker.run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    });
    const log = logger;
    running.catch(async (err: unknown) => {
      log.fatal({ err }, 'worker failed; stopping');
      await stopAll().catch(() => undefined);
      process.exit(1);
    });

    const web = await startWebhookServer({ config, client: temporal.client, logger });
    stops.push(() => web.close());

    stopOnSignals(logger, stopAll);
    logger.info(
      { port: web.port, temporal: temporal.address, embedded: temporal.embedded, ui: temporal.uiUrl },
      'terrapin running',
    );
  } catch (err) {
    await stopAll().catch(() => undefined);
    exitOnStartupFailure(err, logger);
  }
}

if (import.meta.main) await main();
