// Shared by the entries (main, server, worker): config loading, one-line startup errors, and shutdown
// on SIGINT/SIGTERM that stops whatever has started, newest first — also when the signal comes mid-start.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, loadConfig, type ServerConfig } from './config.ts';
import { loadDotEnv } from './first-run.ts';
import { createLogger, type Logger } from './logger.ts';
import { StartupError } from './temporal.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The process logger at LOG_LEVEL; an unknown level is a config error rather than a pino crash. */
export function loggerFor(config: ServerConfig): Logger {
  const level = LOG_LEVELS.find((l) => l === config.logLevel);
  if (!level) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${config.logLevel}"`);
  return createLogger(level);
}

/** Errors the operator fixes by changing the environment: one clear line, no stack trace. */
export function isOperatorError(err: unknown): err is Error {
  return err instanceof ConfigError || err instanceof StartupError;
}

/** Ends the process after a failed start: operator errors as one line on stderr, others logged in full. */
export function exitOnStartupFailure(err: unknown, logger?: Logger): never {
  if (isOperatorError(err)) {
    process.stderr.write(`terrapin: ${err.message}\n`);
  } else if (logger) {
    logger.fatal({ err }, 'startup failed');
    logger.flush?.();
  } else {
    process.stderr.write(`terrapin: startup failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
}

export interface EntryContext {
  config: ServerConfig;
  logger: Logger;
  /** Registers how to stop something that has just started; stops run in reverse order. */
  onStop(stop: () => Promise<unknown>): void;
  /** A part failed after startup (e.g. the worker): stop everything and exit 1. */
  fail(err: unknown, what: string): void;
}

/**
 * Secrets the process needs only while loading its config. Dropped from process.env afterwards: nothing
 * later can hand them on (a child process, a crash dump of the environment, a careless log of it).
 */
export const SECRET_ENV = ['PRIVATE_KEY', 'WEBHOOK_SECRET', 'TEMPORAL_API_KEY', 'GITHUB_CLIENT_SECRET', 'GITHUB_TOKEN', 'GH_TOKEN'] as const;

export function dropSecretsFromEnv(env: Record<string, string | undefined> = process.env): void {
  for (const name of SECRET_ENV) delete env[name];
}

/** Files holding the App's credentials that other users of the host could read (mode bits for group/others). */
export function exposedSecretFiles(env: Record<string, string | undefined> = process.env, dotEnv = '.env'): string[] {
  const files = [env.PRIVATE_KEY_PATH, dotEnv].filter((f): f is string => Boolean(f));
  return files.filter((file) => {
    try {
      return (statSync(file).mode & 0o077) !== 0;
    } catch {
      return false;
    }
  });
}

/** The data dir (Temporal's data, work dirs, plans) is the bot's alone: created 0700. */
export function ensureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if ((statSync(dataDir).mode & 0o077) !== 0) chmodSync(dataDir, 0o700);
}

/** Runs an entry: loads config, starts it, and stops it cleanly on SIGINT/SIGTERM (exit 0) or failure (exit 1). */
export async function runEntry(start: (ctx: EntryContext) => Promise<void>): Promise<void> {
  let config: ServerConfig;
  let logger: Logger;
  try {
    loadDotEnv();
    const exposed = exposedSecretFiles();
    config = loadConfig();
    dropSecretsFromEnv();
    logger = loggerFor(config);
    ensureDataDir(config.dataDir);
    for (const file of exposed) {
      logger.warn({ file: resolve(file) }, 'this file holds Terrapin\'s credentials and other users of this host can read it: chmod 600 it');
    }
  } catch (err) {
    exitOnStartupFailure(err);
  }
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  let exiting = false;
  const exit = (code: number) => {
    logger.flush?.();
    process.exit(code);
  };
  const ctx: EntryContext = {
    config,
    logger,
    onStop: (stop) => stops.push(stop),
    fail: (err, what) => {
      if (exiting) return;
      exiting = true;
      logger.fatal({ err }, `${what} failed; stopping`);
      stopAll().finally(() => exit(1));
    },
  };
  const startup = start(ctx);

  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) {
      logger.warn({ signal }, 'second signal while stopping; exiting now');
      exit(1);
    }
    exiting = true;
    logger.info({ signal }, 'shutting down');
    // A signal during startup waits for it to settle, so nothing started is left running (the dev server).
    startup
      .catch(() => undefined)
      .then(stopAll)
      .then(
        () => {
          logger.info('stopped');
          exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          exit(1);
        },
      );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await startup;
  } catch (err) {
    if (exiting) return; // a signal arrived meanwhile; its handler stops and exits
    exiting = true;
    await stopAll().catch(() => undefined);
    exitOnStartupFailure(err, logger);
  }
}
