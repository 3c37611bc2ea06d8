// Shared by the entries (main, server, worker): one-line startup errors and signal-driven shutdown.
import { ConfigError, type ServerConfig } from './config.ts';
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

/**
 * Runs `stop` once on the first SIGINT/SIGTERM, then exits 0 (1 if stopping failed). A second signal
 * while stopping forces exit 1, for an operator who is done waiting.
 */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while stopping; exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush?.();
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
