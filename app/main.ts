// Everything in one process (`npm start`): Temporal (embedded dev server, or the cluster at TEMPORAL_ADDRESS),
// the worker and the webhook server. SIGINT/SIGTERM stop them in reverse order, dev server last.
import { createActivities } from '../activities/index.ts';
import { startWebhookServer } from './http.ts';
import { runEntry } from './process-lifecycle.ts';
import { connectTemporal } from './temporal.ts';
import { createWorker } from './worker.ts';
import { loadDotEnv, needsAppRegistration, startAppRegistration } from './first-run.ts';

if (import.meta.main) {
  loadDotEnv();
  if (needsAppRegistration()) await startAppRegistration();
  else await runEntry(async ({ config, logger, onStop, fail }) => {
    const temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    onStop(() => temporal.close());

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

    const web = await startWebhookServer({ config, client: temporal.client, logger });
    onStop(() => web.close());
    logger.info(
      { port: web.port, temporal: temporal.address, embedded: temporal.embedded, ui: temporal.uiUrl },
      'terrapin running',
    );
  });
}
