// The codec endpoint for the Temporal UI and CLI (`POST /codec/decode`, `POST /codec/encode`, the codec-server
// protocol: JSON `{ "payloads": [{ "metadata": {k: base64}, "data": base64 }] }` both ways). Whoever may call it
// can read every encrypted history, so it is off unless TERRAPIN_CODEC_TOKEN is set (and a payload key), and then
// every call needs `Authorization: Bearer <token>`. Browsers send CORS preflights without credentials: those are
// answered for the allowed origins only (TERRAPIN_CODEC_CORS_ORIGINS, else the origin of TEMPORAL_UI_URL).
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PayloadCodec } from '@temporalio/common';
import { AesGcmPayloadCodec, parsePayloadKeys, payloadFromJson, payloadToJson, PayloadDecryptError, PayloadKeyError, type JsonPayload } from './codec.ts';

type Env = Record<string, string | undefined>;

export const CODEC_PATHS = { encode: '/codec/encode', decode: '/codec/decode' } as const;
const MIN_TOKEN_LENGTH = 32;
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface CodecEndpointSettings {
  codec: PayloadCodec;
  token: string;
  /** Origins allowed to call from a browser (the Temporal UI's), exact match. */
  allowOrigins: string[];
}

/** The endpoint's settings; undefined (no endpoint) unless both TERRAPIN_PAYLOAD_KEY and TERRAPIN_CODEC_TOKEN are set. */
export function codecEndpointFromEnv(env: Env = process.env): CodecEndpointSettings | undefined {
  const token = env.TERRAPIN_CODEC_TOKEN?.trim();
  if (!token) return undefined;
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new PayloadKeyError(`TERRAPIN_CODEC_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. \`openssl rand -hex 32\`)`);
  }
  const keys = parsePayloadKeys(env.TERRAPIN_PAYLOAD_KEY);
  if (!keys) throw new PayloadKeyError('TERRAPIN_CODEC_TOKEN is set but TERRAPIN_PAYLOAD_KEY is not: there is nothing for the codec endpoint to decode');
  const listed = (env.TERRAPIN_CODEC_CORS_ORIGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const allowOrigins = listed.length ? listed : env.TEMPORAL_UI_URL ? [new URL(env.TEMPORAL_UI_URL).origin] : [];
  return { codec: new AesGcmPayloadCodec(keys), token, allowOrigins };
}

export function isCodecPath(path: string): boolean {
  return path === CODEC_PATHS.encode || path === CODEC_PATHS.decode;
}

export function codecHttpHandler(settings: CodecEndpointSettings) {
  const expected = createHash('sha256').update(settings.token).digest();
  const authorized = (req: IncomingMessage) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return match ? timingSafeEqual(createHash('sha256').update(match[1]!).digest(), expected) : false;
  };
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const origin = req.headers.origin;
    const cors: Record<string, string> =
      origin && settings.allowOrigins.includes(origin)
        ? { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' }
        : {};
    if (req.method === 'OPTIONS') {
      if (!cors['access-control-allow-origin']) return send(res, 403, { error: 'origin not allowed' });
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type, x-namespace',
        'access-control-max-age': '600',
      });
      return void res.end();
    }
    if (req.method !== 'POST') return send(res, 405, { error: 'use POST' }, { ...cors, allow: 'POST, OPTIONS' });
    if (!authorized(req)) return send(res, 401, { error: 'missing or wrong bearer token' }, { ...cors, 'www-authenticate': 'Bearer' });
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, { error: 'body too large' }, cors);
    let payloads: ReturnType<typeof payloadFromJson>[];
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { payloads?: JsonPayload[] };
      if (!Array.isArray(parsed?.payloads)) throw new TypeError('expected { "payloads": [...] }');
      payloads = parsed.payloads.map(payloadFromJson);
    } catch (err) {
      return send(res, 400, { error: err instanceof Error ? err.message : 'invalid JSON' }, cors);
    }
    try {
      const out = path === CODEC_PATHS.encode ? await settings.codec.encode(payloads) : await settings.codec.decode(payloads);
      send(res, 200, { payloads: out.map(payloadToJson) }, cors);
    } catch (err) {
      if (err instanceof PayloadDecryptError) return send(res, 422, { error: err.message }, cors);
      throw err;
    }
  };
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}
