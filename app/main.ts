// Everything in one process (`npm start`): Temporal (embedded dev server, or the cluster at TEMPORAL_ADDRESS),
// the worker and the webhook server. SIGINT/SIGTERM stop them in reverse order, dev server last.
import { startWebhookServer } from './http.ts';
import { runEntry } from './process-lifecycle.ts';
import { connectTemporal } from './temporal.ts';
import { runTerrapinWorker, startReconciler } from './worker.ts';
import { loadDotEnv, needsAppRegistration, startAppRegistration } from './first-run.ts';

if (import.meta.main) {
  loadDotEnv();
  if (needsAppRegistration()) await startAppRegistration();
  else await runEntry(async ({ config, logger, onStop, fail }) => {
    const temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    onStop(() => temporal.close());

    const worker = await runTerrapinWorker({ config, logger, temporal, onCrash: (err) => fail(err, 'worker') });
    onStop(worker);
    await startReconciler(config, temporal.client, logger);

    // One process, one registry: /metrics, /healthz and /readyz (worker included) on the webhook port.
    const web = await startWebhookServer({ config, client: temporal.client, logger, workerRunning: worker.isRunning });
    onStop(() => web.close());
    logger.info(
      { port: web.port, temporal: temporal.address, embedded: temporal.embedded, ui: temporal.uiUrl },
      'terrapin running',
    );
  });
}
