// Where the operator's tools (the CLI, the MCP server) reach Terrapin: the Temporal the server uses, with the
// server's own settings (app/config.ts), and — only for the commands that must read GitHub — the App's
// credentials. With no TEMPORAL_ADDRESS that is the embedded dev server `npm start` runs for the data dir.
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { GithubSettings } from '../app/config.ts';
import { githubBaseUrl, temporalSettings, type TemporalSettings } from '../app/temporal-settings.ts';

type Env = Record<string, string | undefined>;

import { UnavailableError } from './errors.ts';

export { UnavailableError } from './errors.ts';

export interface OperatorConnection {
  client: Client;
  address: string;
  namespace: string;
  /** Where this machine's runs keep their files (TERRAPIN_DATA_DIR); logs are read from here when present. */
  dataDir: string;
  /** The server's Temporal settings (task queue for starts, UI link). */
  temporal: TemporalSettings;
  close(): Promise<void>;
}

/** The embedded server's address: the port app/temporal.ts starts it on (TERRAPIN_EMBEDDED_TEMPORAL_PORT, else 7233). */
export function embeddedAddress(env: Env): string {
  const raw = env.TERRAPIN_EMBEDDED_TEMPORAL_PORT;
  const port = raw ? Number(raw) : 7233;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new UnavailableError(`TERRAPIN_EMBEDDED_TEMPORAL_PORT must be a port number, got "${raw}"`);
  }
  return `127.0.0.1:${port}`;
}

export const dataDirOf = (env: Env): string => resolve(env.TERRAPIN_DATA_DIR || '.terrapin');

export async function connectOperator(env: Env = process.env, opts: { connectTimeoutMs?: number } = {}): Promise<OperatorConnection> {
  const settings = temporalSettings(env);
  const embedded = !settings.address;
  const address = settings.address ?? embeddedAddress(env);
  const timeout = opts.connectTimeoutMs ?? 5000;
  if (embedded && !(await reachable(address, timeout))) {
    throw new UnavailableError(`no Temporal at ${address} — start Terrapin (\`npm start\`) or set TEMPORAL_ADDRESS`);
  }
  let tls: Awaited<ReturnType<typeof tlsFor>>;
  try {
    tls = await tlsFor(settings);
  } catch (err) {
    throw new UnavailableError(err instanceof Error ? err.message : String(err));
  }
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, tls, apiKey: settings.apiKey, connectTimeout: timeout });
  } catch (err) {
    throw new UnavailableError(`cannot reach Temporal at ${address}: ${reason(err)}${embedded ? '' : ' (check TEMPORAL_ADDRESS, TLS and API key)'}`);
  }
  return {
    // The server's TERRAPIN_PAYLOAD_KEY: without it, encrypted inputs, results and memos cannot be read.
    client: new Client({ connection, namespace: settings.namespace, dataConverter: await dataConverterFor(env) }),
    address,
    namespace: settings.namespace,
    dataDir: dataDirOf(env),
    temporal: settings,
    close: () => connection.close(),
  };
}

/** app/codec.ts loaded only with a key set, so that `terrapin` starts quickly without one. */
async function dataConverterFor(env: Env) {
  if (!env.TERRAPIN_PAYLOAD_KEY?.trim()) return undefined;
  try {
    const { payloadDataConverter } = await import('../app/codec.ts');
    return payloadDataConverter(env);
  } catch (err) {
    throw new UnavailableError(err instanceof Error ? err.message : String(err));
  }
}

/** mTLS or API-key TLS as the server configures it (app/temporal.ts, loaded only then: it pulls in the worker). */
async function tlsFor(settings: TemporalSettings) {
  if (!settings.tls && !settings.apiKey) return undefined;
  const { tlsConfig } = await import('../app/temporal.ts');
  return tlsConfig(settings);
}

function reachable(address: string, timeoutMs: number): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((done) => {
    const socket = tcpConnect({ host, port });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.replace(/^\d+ [A-Z_]+: /, '');
}

/**
 * The GitHub App's credentials, as the server reads them (APP_ID, PRIVATE_KEY or PRIVATE_KEY_PATH, GHE_HOST);
 * undefined when they are not all there. Only commands that must read GitHub ask for them.
 */
export function githubCredentials(env: Env = process.env): Omit<GithubSettings, 'webhookSecret'> | undefined {
  if (!env.APP_ID) return undefined;
  let privateKey = env.PRIVATE_KEY?.replace(/\\n/g, '\n');
  if (!privateKey && env.PRIVATE_KEY_PATH) {
    try {
      privateKey = readFileSync(env.PRIVATE_KEY_PATH, 'utf8');
    } catch (err) {
      throw new UnavailableError(`PRIVATE_KEY_PATH: cannot read ${env.PRIVATE_KEY_PATH} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  if (!privateKey) return undefined;
  return { appId: env.APP_ID, privateKey, baseUrl: githubBaseUrl(env) };
}

/** github.com or GHE web URL of a repository (for PR and issue links). */
export function githubWebUrl(env: Env = process.env): string {
  return env.GHE_HOST ? `${env.GHE_PROTOCOL ?? 'https'}://${env.GHE_HOST}` : 'https://github.com';
}
