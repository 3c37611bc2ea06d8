// Connection to Temporal: the embedded dev server (no TEMPORAL_ADDRESS) or a real cluster / Temporal Cloud.
//
// The embedded server is started through @temporalio/testing's dev-server machinery rather than by spawning
// the CLI ourselves: it is the SDK's own way to run `temporal server start-dev`, it takes either an existing
// binary or downloads and caches the right one (one code path for both), waits until the frontend answers,
// registers search attributes, and its teardown stops the process it started.
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';
import { ConfigError, type TemporalSettings } from './config.ts';
import type { Logger } from './logger.ts';
import { SEARCH_ATTRIBUTES } from '../shared/records.ts';
import { PayloadKeyError, payloadDataConverter } from './codec.ts';
import { setSdkMetricsUrl } from './metrics.ts';

export { SEARCH_ATTRIBUTES } from '../shared/records.ts';

export const DEFAULT_EMBEDDED_PORT = 7233;

export interface TemporalHandle {
  client: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  address: string;
  embedded: boolean;
  /** Web UI of the embedded server (undefined for a cluster). */
  uiUrl?: string;
  close(): Promise<void>;
}

export interface ConnectOptions {
  dataDir: string;
  logger: Logger;
  /** Embedded server ports; default TERRAPIN_EMBEDDED_TEMPORAL_PORT or 7233, UI at port + 1000 (8233). */
  port?: number;
  uiPort?: number;
  env?: Record<string, string | undefined>;
}

/** Startup failed for a reason the operator can fix (busy port, unreadable cert): printed as one line. */
export class StartupError extends Error {}

export async function connectTemporal(settings: TemporalSettings, opts: ConnectOptions): Promise<TemporalHandle> {
  installTemporalRuntime(opts.logger, await sdkMetricsPort(opts.env ?? process.env));
  // TERRAPIN_PAYLOAD_KEY: every client built here encrypts; the worker takes the same converter from the client.
  let dataConverter: DataConverter | undefined;
  try {
    dataConverter = payloadDataConverter(opts.env ?? process.env);
  } catch (err) {
    throw err instanceof PayloadKeyError ? new ConfigError(err.message) : err;
  }
  if (dataConverter) opts.logger.info('payloads stored in Temporal are encrypted (TERRAPIN_PAYLOAD_KEY)');
  return settings.address ? connectCluster(settings, settings.address, opts.logger, dataConverter) : startEmbedded(settings, opts, dataConverter);
}

async function startEmbedded(settings: TemporalSettings, opts: ConnectOptions, dataConverter?: DataConverter): Promise<TemporalHandle> {
  const env = opts.env ?? process.env;
  const port = opts.port ?? portFromEnv(env.TERRAPIN_EMBEDDED_TEMPORAL_PORT) ?? DEFAULT_EMBEDDED_PORT;
  const uiPort = opts.uiPort ?? port + 1000;
  for (const p of [port, uiPort]) {
    if (!(await isPortFree(p))) {
      throw new StartupError(
        `Port ${p} is in use, so the embedded Temporal server cannot start. Stop whatever holds it, ` +
          `set TERRAPIN_EMBEDDED_TEMPORAL_PORT, or set TEMPORAL_ADDRESS to use a running cluster.`,
      );
    }
  }
  const stateDir = join(opts.dataDir, 'temporal');
  mkdirSync(stateDir, { recursive: true });
  const dbFilename = join(stateDir, 'temporal.sqlite');
  const cli = findTemporalCli(env);
  opts.logger.info(
    { port, uiPort, dbFilename, cli: cli ?? 'download' },
    cli ? 'starting embedded Temporal dev server' : 'temporal CLI not found; downloading it (cached) to start the embedded server',
  );
  const server: LocalEnvironmentOptions['server'] = {
    // Cached under the data dir so a container with a /data volume downloads once, not once a day in /tmp.
    executable: cli ? { type: 'existing-path', path: cli } : { type: 'cached-download', downloadDir: join(stateDir, 'cli') },
    dbFilename,
    ip: '127.0.0.1',
    port,
    ui: true,
    uiPort,
    namespace: settings.namespace,
    searchAttributes: Object.values(SEARCH_ATTRIBUTES),
    log: { format: 'json', level: 'warn' },
  };
  const testEnv = await startDevServer(
    { server },
    {
      onRetry: (attempt, err) =>
        opts.logger.warn({ attempt, err: err.message }, 'embedded Temporal did not answer in time; starting it again'),
    },
  );
  try {
    await registerMissingSearchAttributes(testEnv.connection, settings.namespace, opts.logger);
  } catch (err) {
    await testEnv.teardown();
    throw err;
  }
  const address = `127.0.0.1:${port}`;
  opts.logger.info({ address, ui: `http://127.0.0.1:${uiPort}` }, 'embedded Temporal ready');
  let closing: Promise<void> | undefined;
  return {
    client: new Client({ connection: testEnv.connection, namespace: settings.namespace, dataConverter }),
    connection: testEnv.connection,
    nativeConnection: testEnv.nativeConnection,
    address,
    embedded: true,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    close: () => (closing ??= testEnv.teardown()),
  };
}

/** temporal.api.enums.v1.IndexedValueType of each search attribute type Terrapin uses. */
const INDEXED_VALUE_TYPE = { KEYWORD: 2, INT: 3, KEYWORD_LIST: 7 } as const;

/**
 * The dev server registers `--search-attribute`s only when it creates its SQLite file: one kept from an older
 * Terrapin lacks the attributes added since, and without them workflows record none (searchAttributesRegistered).
 */
async function registerMissingSearchAttributes(connection: Connection, namespace: string, logger: Logger): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.values(SEARCH_ATTRIBUTES).filter((k) => !customAttributes?.[k.name]);
  if (missing.length === 0) return;
  const searchAttributes = Object.fromEntries(missing.map((k) => [k.name, INDEXED_VALUE_TYPE[k.type as keyof typeof INDEXED_VALUE_TYPE]]));
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  logger.info({ added: missing.map((k) => k.name) }, 'registered search attributes the embedded server\'s database did not have yet');
}

type LocalEnvironmentOptions = NonNullable<Parameters<typeof TestWorkflowEnvironment.createLocal>[0]>;

/**
 * TestWorkflowEnvironment.createLocal with retries. The SDK gives the dev server a fixed 5 s to answer and
 * kills it otherwise; on a busy machine (2 cores under load, a cold SQLite file) that is too short. A start
 * killed that way leaves the SQLite file usable, so starting again is safe.
 */
export async function startDevServer(
  options: LocalEnvironmentOptions,
  { attempts = 4, onRetry }: { attempts?: number; onRetry?: (attempt: number, err: Error) => void } = {},
): Promise<TestWorkflowEnvironment> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createLocal(options);
    } catch (err) {
      if (attempt >= attempts || !isStartupTimeout(err)) throw err;
      onRetry?.(attempt, err as Error);
    }
  }
}

function isStartupTimeout(err: unknown): boolean {
  return err instanceof Error && /did not start within/.test(err.message);
}

/**
 * Whoever can reach an unauthenticated Temporal frontend can signal, start and terminate Terrapin's
 * workflows (an `/approve` from anyone they like) and poll its task queue. A cluster reached without a
 * client certificate or API key must therefore be reachable only by Terrapin: say so at start.
 */
export function unauthenticatedClusterWarning(settings: TemporalSettings): string | undefined {
  if (!settings.address || settings.apiKey || (settings.tls?.certPath && settings.tls.keyPath)) return undefined;
  // This host's loopback (the embedded server of `npm run server`): repository code runs in a network without it.
  if (/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/i.test(settings.address)) return undefined;
  return (
    `Temporal at ${settings.address} is reached without a client certificate or API key: anyone who can reach it can ` +
    'signal Terrapin\'s workflows and so forge approvals. Use mTLS (TEMPORAL_TLS_CERT/KEY) or TEMPORAL_API_KEY, or ' +
    'make sure only Terrapin can reach it (repository code runs in a private network and never can).'
  );
}

async function connectCluster(settings: TemporalSettings, address: string, logger: Logger, dataConverter?: DataConverter): Promise<TemporalHandle> {
  const warning = unauthenticatedClusterWarning(settings);
  if (warning) logger.warn({ address }, warning);
  const tls = tlsConfig(settings);
  const common = { address, tls, apiKey: settings.apiKey };
  const connection = await Connection.connect(common);
  let nativeConnection: NativeConnection;
  try {
    nativeConnection = await NativeConnection.connect(common);
  } catch (err) {
    await connection.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    client: new Client({ connection, namespace: settings.namespace, dataConverter }),
    connection,
    nativeConnection,
    address,
    embedded: false,
    close: () => (closing ??= Promise.all([nativeConnection.close(), connection.close()]).then(() => undefined)),
  };
}

/** mTLS when a cert/key is given; plain TLS when only a CA, server name or API key (Temporal Cloud) is given. */
export function tlsConfig(settings: TemporalSettings): TLSConfig | boolean | undefined {
  const t = settings.tls;
  if (!t) return settings.apiKey ? true : undefined;
  if (Boolean(t.certPath) !== Boolean(t.keyPath)) {
    throw new ConfigError('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
  }
  return {
    clientCertPair: t.certPath && t.keyPath ? { crt: readPem(t.certPath, 'TEMPORAL_TLS_CERT'), key: readPem(t.keyPath, 'TEMPORAL_TLS_KEY') } : undefined,
    serverRootCACertificate: t.caPath ? readPem(t.caPath, 'TEMPORAL_TLS_CA') : undefined,
    serverNameOverride: t.serverName,
  };
}

function readPem(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** TEMPORAL_CLI_PATH, else the first executable `temporal` on PATH; undefined → the SDK downloads one. */
export function findTemporalCli(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.TEMPORAL_CLI_PATH) return env.TEMPORAL_CLI_PATH;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'temporal');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function portFromEnv(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new ConfigError(`TERRAPIN_EMBEDDED_TEMPORAL_PORT must be a port number, got "${value}"`);
  }
  return port;
}

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

let runtimeInstalled = false;

/** TERRAPIN_SDK_METRICS_PORT: where the SDK's exporter listens on loopback; `off` for none; unset → any free port. */
export async function sdkMetricsPort(env: Record<string, string | undefined>): Promise<number | undefined> {
  const value = env.TERRAPIN_SDK_METRICS_PORT?.trim();
  if (value === 'off') return undefined;
  if (value) {
    const port = Number(value);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new ConfigError(`TERRAPIN_SDK_METRICS_PORT must be a port number or "off", got "${value}"`);
    return port;
  }
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(undefined));
    probe.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Routes the Temporal Runtime's logs (SDK, workflow and Core) to pino. The Runtime is a process singleton
 * created by the first connection, so this must run before any; later calls are no-ops. Signal handling is
 * left to our entries (shutdownSignals: []) so that shutdown order stays ours.
 */
export function installTemporalRuntime(logger: Logger, metricsPort?: number): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const log = logger.child({ component: 'temporal' });
  const coreLevel = ['trace', 'debug'].includes(logger.level) ? 'DEBUG' : 'WARN';
  try {
    Runtime.install({
      shutdownSignals: [],
      logger: {
        log: (level, message, meta) => writeLog(log, level, message, meta),
        trace: (message, meta) => writeLog(log, 'TRACE', message, meta),
        debug: (message, meta) => writeLog(log, 'DEBUG', message, meta),
        info: (message, meta) => writeLog(log, 'INFO', message, meta),
        warn: (message, meta) => writeLog(log, 'WARN', message, meta),
        error: (message, meta) => writeLog(log, 'ERROR', message, meta),
      },
      telemetryOptions: {
        logging: { filter: { core: coreLevel, other: 'WARN' }, forward: {} },
        // The SDK's worker metrics (temporal_*), on loopback: /metrics appends them to Terrapin's own.
        ...(metricsPort ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${metricsPort}`, useSecondsForDurations: true } } } : {}),
      },
    });
    setSdkMetricsUrl(metricsPort ? `http://127.0.0.1:${metricsPort}/metrics` : undefined);
  } catch (err) {
    // Already instantiated elsewhere in this process (e.g. a test environment): keep its logger.
    log.debug({ err }, 'Temporal Runtime already instantiated; logs not routed to pino');
  }
}

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

function writeLog(log: Logger, level: LogLevel, message: string, meta?: LogMetadata): void {
  log[PINO_LEVEL[level]](meta ?? {}, message);
}
