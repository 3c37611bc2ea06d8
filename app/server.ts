// The webhook server alone (`npm run server`): webhooks → signals. Workers run elsewhere (`npm run worker`).
import { startWebhookServer } from './http.ts';
import { runEntry } from './process-lifecycle.ts';
import { connectTemporal } from './temporal.ts';

if (import.meta.main) {
  await runEntry(async ({ config, logger, onStop }) => {
    const temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    onStop(() => temporal.close());
    if (temporal.embedded) {
      logger.warn(
        { address: temporal.address },
        'TEMPORAL_ADDRESS is not set: started an embedded Temporal server; point workers at it with TEMPORAL_ADDRESS',
      );
    }
    const web = await startWebhookServer({ config, client: temporal.client, logger });
    onStop(() => web.close());
    logger.info({ port: web.port, temporal: temporal.address }, 'webhook server listening');
  });
}
