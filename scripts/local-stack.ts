// Terrapin on this machine, as the demo and the benchmarks run it: the loopback GitHub stand-in, embedded
// Temporal, optionally a worker, and the webhook server, all in this process, with a throwaway app key.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type ServerConfig as Config } from '../app/config.ts';
import { startWebhookServer, WEBHOOK_PATH } from '../app/http.ts';
import { createLogger } from '../app/logger.ts';
import { connectTemporal, DEFAULT_EMBEDDED_PORT, installTemporalRuntime, isPortFree, type TemporalHandle } from '../app/temporal.ts';
import { runTerrapinWorker } from '../app/worker.ts';
import { startGithubStandin, type GithubStandin } from './github-standin.ts';
import { sendWebhook, type Delivery } from './webhook-deliveries.ts';

export const APP_ID = '4242';

export type Stops = (() => Promise<unknown>)[];

export interface LocalStackOptions {
  /** Scratch directory: Terrapin's data directory goes in it. */
  tmp: string;
  webhookSecret: string;
  taskQueue: string;
  /** Start a worker (default true). Without one, Temporal still accepts signals and starts workflows. */
  worker?: boolean;
  /** Link Terrapin's comments and checks to the embedded Temporal UI (TEMPORAL_UI_URL). */
  linkTemporalUi?: boolean;
  /** Further settings for loadConfig, e.g. LOG_LEVEL. */
  env?: Record<string, string>;
  /** The app logger's level; config.logLevel by default. */
  logLevel?: pino.LevelWithSilent;
  /** Write logs synchronously (default true); asynchronous logging keeps a benchmark's hot path free. */
  syncLogs?: boolean;
  /** Adjusts the config before anything uses it (e.g. lets the sandbox through to a state directory). */
  configure?: (config: Config) => void;
}

export interface LocalStack {
  standin: GithubStandin;
  config: Config;
  logger: pino.Logger;
  temporal: TemporalHandle;
  /** The Temporal UI, when Temporal is embedded on this port pair. */
  uiUrl: string;
  webhookUrl: string;
  /** Signs and sends one webhook delivery to the webhook server. */
  deliver(event: string, payload: unknown): Promise<Delivery>;
}

/** The default embedded Temporal port (and its UI port) when both are free, else a fallback. */
async function temporalPort(): Promise<number> {
  return (await isPortFree(DEFAULT_EMBEDDED_PORT)) && (await isPortFree(DEFAULT_EMBEDDED_PORT + 1000)) ? DEFAULT_EMBEDDED_PORT : 17233;
}

function stackConfig(opts: LocalStackOptions, standin: GithubStandin, uiUrl: string): Config {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const config = loadConfig({
    APP_ID,
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET: opts.webhookSecret,
    GHE_HOST: standin.host,
    GHE_PROTOCOL: 'http',
    PORT: '0',
    TERRAPIN_DATA_DIR: join(opts.tmp, 'data'),
    TEMPORAL_TASK_QUEUE: opts.taskQueue,
    ...(opts.linkTemporalUi ? { TEMPORAL_UI_URL: uiUrl } : {}),
    ...opts.env,
  });
  opts.configure?.(config);
  return config;
}

/** Starts everything, pushing each part's stop onto `stops` as it comes up (stop them in reverse). */
export async function startLocalStack(opts: LocalStackOptions, stops: Stops): Promise<LocalStack> {
  const standin = await startGithubStandin();
  stops.push(() => standin.close());
  const port = await temporalPort();
  const uiUrl = `http://127.0.0.1:${port + 1000}`;
  const config = stackConfig(opts, standin, uiUrl);
  const logger = createLogger(opts.logLevel ?? (config.logLevel as pino.LevelWithSilent), pino.destination({ fd: 2, sync: opts.syncLogs ?? true }));
  installTemporalRuntime(logger);
  const temporal = await connectTemporal(config.temporal, { dataDir: config.dataDir, logger, port });
  stops.push(() => temporal.close());
  if (opts.worker ?? true) {
    stops.push(await runTerrapinWorker({ config, logger, temporal, onCrash: (err) => logger.error({ err }, 'worker stopped') }));
  }
  const web = await startWebhookServer({ config, client: temporal.client, logger, port: 0 });
  stops.push(() => web.close());
  const webhookUrl = `http://127.0.0.1:${web.port}${WEBHOOK_PATH}`;
  const deliver = (event: string, payload: unknown) => sendWebhook({ url: webhookUrl, secret: opts.webhookSecret, event, payload, appId: APP_ID });
  return { standin, config, logger, temporal, uiUrl, webhookUrl, deliver };
}

/** Stops what was started, last first, ignoring failures: the process is ending anyway. */
export async function stopAll(stops: Stops): Promise<void> {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}
