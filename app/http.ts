// Webhook endpoint on node:http. Probot's own middleware (@octokit/webhooks createNodeMiddleware) answers
// 202 "still processing" once a handler takes longer than 9 s, and passes a handler error's `status` through
// (a 404 from any library becomes a 404 to GitHub). Here 2xx means exactly "Temporal accepted the signal
// (or the event needs none)"; every failure after the signature check is a 5xx so GitHub can redeliver.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Probot } from 'probot';
import type { Client } from '@temporalio/client';
import { ConfigError, type ServerConfig } from './config.ts';
import { PayloadKeyError } from './codec.ts';
import type { Logger } from './logger.ts';
import { createApp } from './index.ts';
import { MalformedPayload } from './deliver.ts';
import { MCP_PATH, mcpDeps, mcpHttpHandler } from '../mcp/http.ts';
import { codecEndpointFromEnv, codecHttpHandler, isCodecPath, type CodecEndpointSettings } from './codec-server.ts';
import { exposition, observeWebhook, registry, watchWorkflows } from './metrics.ts';

export const WEBHOOK_PATH = '/api/github/webhooks';
export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';
/** How long /readyz waits for Temporal to answer. */
const READY_TIMEOUT_MS = 3_000;

/** What /readyz checks: Temporal answers, and (where this process runs one) the worker is polling. */
export interface Readiness {
  client: Client;
  /** Absent in a process without a worker (`npm run server`). */
  workerRunning?: () => boolean;
}
/** GitHub caps webhook payloads at 25 MB. */
const MAX_BODY_BYTES = 25 * 1024 * 1024;
/** Bodies read before their signature is known: beyond this many at once, 503 at once (GitHub redelivers). */
const MAX_UNVERIFIED = 32;
/** A body that has not arrived in full by then is dropped (408): a slow sender must not hold a slot. */
const BODY_TIMEOUT_MS = 20_000;

export interface WebhookLimits {
  maxBodyBytes?: number;
  maxUnverified?: number;
  bodyTimeoutMs?: number;
}

export interface WebhookServer {
  port: number;
  probot: Probot;
  close(): Promise<void>;
}

export async function startWebhookServer(opts: {
  config: ServerConfig;
  client: Client;
  logger: Logger;
  port?: number;
  limits?: WebhookLimits;
  /** The codec endpoint for the Temporal UI; default from TERRAPIN_CODEC_TOKEN + TERRAPIN_PAYLOAD_KEY (off without them). */
  codec?: CodecEndpointSettings | null;
  /** The worker of this process (`npm start`), for /readyz. */
  workerRunning?: () => boolean;
}): Promise<WebhookServer> {
  const { config, client, logger } = opts;
  const probot = new Probot({
    appId: config.github.appId,
    privateKey: config.github.privateKey,
    secret: config.github.webhookSecret,
    baseUrl: config.github.baseUrl,
    log: logger.child({ component: 'probot' }),
  });
  await probot.load(createApp({ client, taskQueue: config.temporal.taskQueue, repoAllowlist: config.repoAllowlist, logger }));
  const handle = webhookHandler(probot, logger.child({ component: 'http' }), { secret: config.github.webhookSecret, ...opts.limits });

  // MCP for agents at /mcp, only with TERRAPIN_MCP_TOKEN set: otherwise the path is as unknown as any other.
  const mcp = config.mcpToken
    ? mcpHttpHandler({ token: config.mcpToken, deps: mcpDeps(config, client), logger: logger.child({ component: 'mcp' }) })
    : undefined;
  if (mcp) logger.info({ path: MCP_PATH }, 'MCP endpoint for agents is on (TERRAPIN_MCP_TOKEN is set)');
  const codecSettings = opts.codec === undefined ? codecEndpointFromConfig() : (opts.codec ?? undefined);
  const codec = codecSettings ? codecHttpHandler(codecSettings) : undefined;
  if (codec) logger.info({ paths: ['/codec/encode', '/codec/decode'] }, 'codec endpoint for the Temporal UI is on (TERRAPIN_CODEC_TOKEN is set)');
  watchWorkflows(client);
  const ops = opsHandler({ client, workerRunning: opts.workerRunning });
  const server = createServer((req, res) => {
    const path = requestPath(req);
    const route = mcp && path === MCP_PATH ? mcp : OPS_PATHS.has(path) ? ops : codec && isCodecPath(path) ? (q: IncomingMessage, s: ServerResponse) => codec(q, s, path) : handle;
    route(req, res).catch((err: unknown) => {
      logger.error({ err }, 'webhook request failed');
      if (!res.headersSent) reply(res, 500, 'internal error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? config.port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    probot,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

export function webhookHandler(probot: Probot, log: Logger, opts: { secret: string } & WebhookLimits) {
  const maxBodyBytes = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const maxUnverified = opts.maxUnverified ?? MAX_UNVERIFIED;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  let unverified = 0;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = requestPath(req);
    if (path === HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD')) return reply(res, 200, 'ok');
    if (path !== WEBHOOK_PATH) return reply(res, 404, 'not found');
    // Every answer from here on is counted, by the (bounded) event name and status class.
    const started = performance.now();
    res.once('finish', () => observeWebhook(header(req, 'x-github-event'), res.statusCode, (performance.now() - started) / 1000));
    if (req.method !== 'POST') return reply(res, 405, 'use POST', { allow: 'POST' });
    if (!/^\s*application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      return reply(res, 415, 'content-type must be application/json');
    }
    const id = header(req, 'x-github-delivery');
    const name = header(req, 'x-github-event');
    const signature = header(req, 'x-hub-signature-256');
    if (!id || !name) return reply(res, 400, 'missing X-GitHub-Delivery or X-GitHub-Event');
    if (!signature) return reply(res, 401, 'missing X-Hub-Signature-256');
    const expected = /^sha256=([0-9a-f]{64})$/i.exec(signature.trim())?.[1];
    if (!expected) return refuse(req, res, 401, 'signature does not match');
    if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) return refuse(req, res, 413, 'payload too large');
    if (unverified >= maxUnverified) {
      log.warn({ deliveryId: id, event: name, unverified }, 'too many unverified webhook bodies in flight; refused');
      return refuse(req, res, 503, 'busy, please retry');
    }

    // The signature is checked while the body streams in; nothing is decoded or parsed before it holds.
    unverified++;
    let read: Awaited<ReturnType<typeof readSigned>>;
    try {
      read = await readSigned(req, opts.secret, Buffer.from(expected, 'hex'), maxBodyBytes, bodyTimeoutMs);
    } finally {
      unverified--;
    }
    if (read === 'too-large') return refuse(req, res, 413, 'payload too large');
    if (read === 'timeout') return refuse(req, res, 408, 'body took too long');
    if (read === 'bad-signature') {
      log.warn({ deliveryId: id, event: name }, 'webhook signature does not match WEBHOOK_SECRET; rejected');
      return reply(res, 401, 'signature does not match');
    }
    // GitHub sends UTF-8; anything else cannot be read faithfully.
    let body: string;
    try {
      body = new TextDecoder('utf-8', { fatal: true }).decode(read);
    } catch {
      return reply(res, 400, 'body is not UTF-8');
    }
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      return reply(res, 400, 'invalid JSON');
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return reply(res, 400, 'payload must be a JSON object');
    try {
      // Resolves once every handler has finished, i.e. after Temporal accepted the signal.
      await probot.webhooks.receive({ id, name, payload } as Parameters<typeof probot.webhooks.receive>[0]);
    } catch (err) {
      // A payload without the fields its event carries (a handler read past its end) will not get better
      // by redelivering it: 400, not 503. Temporal being unreachable is worth a retry.
      if (innerErrors(err).every((e) => e instanceof TypeError || e instanceof MalformedPayload)) {
        log.warn({ errors: errorMessages(err), deliveryId: id, event: name }, 'malformed webhook payload; rejected');
        return reply(res, 400, 'malformed payload');
      }
      // Not `err` itself: @octokit/webhooks attaches the whole event (payload included) to its errors.
      log.error({ errors: errorMessages(err), deliveryId: id, event: name }, 'webhook not delivered; GitHub may redeliver');
      return reply(res, 503, 'not delivered, please retry');
    }
    reply(res, 200, 'ok');
  };
}

function codecEndpointFromConfig(): CodecEndpointSettings | undefined {
  try {
    return codecEndpointFromEnv(process.env);
  } catch (err) {
    throw err instanceof PayloadKeyError ? new ConfigError(err.message) : err;
  }
}

const OPS_PATHS = new Set([HEALTH_PATH, READY_PATH, METRICS_PATH]);

/**
 * /healthz (the process answers), /readyz (Temporal answers and the worker, if any, is polling) and /metrics
 * (Prometheus text). Served by the webhook server and by a worker's own listener alike.
 */
export function opsHandler(readiness: Readiness) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'use GET', { allow: 'GET, HEAD' });
    const path = requestPath(req);
    if (path === HEALTH_PATH) return reply(res, 200, 'ok');
    if (path === METRICS_PATH) {
      res.writeHead(200, { 'content-type': registry.contentType }).end(await exposition());
      return;
    }
    const problems = await readinessProblems(readiness);
    if (problems.length) return reply(res, 503, `not ready: ${problems.join('; ')}`);
    reply(res, 200, 'ready');
  };
}

async function readinessProblems({ client, workerRunning }: Readiness): Promise<string[]> {
  const problems: string[] = [];
  if (workerRunning && !workerRunning()) problems.push('worker is not polling');
  try {
    await client.withDeadline(Date.now() + READY_TIMEOUT_MS, () => client.workflowService.getSystemInfo({}));
  } catch {
    problems.push('Temporal does not answer');
  }
  return problems;
}

function requestPath(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/';
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Reads the body while computing its HMAC-SHA256; the bytes only once the signature matched (compared in
 * constant time). Stops reading at the size cap or the deadline.
 */
function readSigned(req: IncomingMessage, secret: string, expected: Buffer, maxBytes: number, timeoutMs: number): Promise<Buffer | 'too-large' | 'timeout' | 'bad-signature'> {
  return new Promise((resolve) => {
    const hmac = createHmac('sha256', secret);
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: Buffer | 'too-large' | 'timeout' | 'bad-signature') => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('aborted', onGone);
      if (typeof result === 'string') req.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return done('too-large');
      hmac.update(chunk);
      chunks.push(chunk);
    };
    const onEnd = () => {
      const actual = hmac.digest();
      done(actual.length === expected.length && timingSafeEqual(actual, expected) ? Buffer.concat(chunks) : 'bad-signature');
    };
    // A sender that went away cannot be answered; its slot is freed all the same.
    const onGone = () => done('timeout');
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('aborted', onGone);
  });
}

/** Answers before the body was read in full: the connection closes, so the rest is never read. */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`${text}\n`, () => req.destroy());
}

function reply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`);
}

/** An error and the errors it aggregates (@octokit/webhooks wraps handler errors in an AggregateError). */
function innerErrors(err: unknown): unknown[] {
  const inner = (err as { errors?: unknown[] }).errors;
  return Array.isArray(inner) && inner.length ? inner.flatMap(innerErrors) : [err];
}

/** The messages of an error and of the errors it aggregates, without the objects they carry. */
export function errorMessages(err: unknown): string[] {
  return innerErrors(err).map((e) => (e instanceof Error ? e.message : String(e)));
}
