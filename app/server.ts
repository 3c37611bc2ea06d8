// The webhook server alone (`npm run server`): webhooks → signals. Workers run elsewhere (`npm run worker`).
import { startWebhookServer } from './http.ts';
import { loadConfig } from './config.ts';
import type { Logger } from './logger.ts';
import { exitOnStartupFailure, loggerFor, stopOnSignals } from './process-lifecycle.ts';
import { connectTemporal, type TemporalHandle } from './temporal.ts';

async function main(): Promise<void> {
  let logger: Logger | undefined;
  let temporal: TemporalHandle | undefined;
  try {
    const config = loadConfig();
    logger = loggerFor(config);
    temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger });
    const web = await startWebhookServer({ config, client: temporal.client, logger });
    const connected = temporal;
    stopOnSignals(logger, async () => {
      await web.close();
      await connected.close();
    });
    logger.info({ port: web.port }, 'webhook server listening');
  } catch (err) {
    await temporal?.close().catch(() => undefined);
    exitOnStartupFailure(err, logger);
  }
}

if (import.meta.main) await main();
