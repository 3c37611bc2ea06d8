// The payload codec (keys, rotation, wrong keys, tampering) and the codec endpoint on the webhook server.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AesGcmPayloadCodec, ENCODING, FAILURE_CONVERTER_PATH, parsePayloadKeys, PayloadDecryptError, PayloadKeyError, payloadDataConverter, payloadToJson } from '../../app/codec.ts';
import { codecEndpointFromEnv } from '../../app/codec-server.ts';
import { loadConfig } from '../../app/config.ts';
import { startWebhookServer, type WebhookServer } from '../../app/http.ts';
import { privateKeyPem, silentLogger } from './support.ts';

const key = () => randomBytes(32).toString('base64');
const codecFor = (value: string) => new AesGcmPayloadCodec(parsePayloadKeys(value)!);
const payload = (value: unknown): Payload => defaultPayloadConverter.toPayload(value)!;
const value = (p: Payload) => defaultPayloadConverter.fromPayload(p);

describe('TERRAPIN_PAYLOAD_KEY', () => {
  test('unset or empty: no encryption; one bare key gets the id "default"; ids keep their order', () => {
    expect(parsePayloadKeys(undefined)).toBeUndefined();
    expect(parsePayloadKeys(' ')).toBeUndefined();
    expect(payloadDataConverter({})).toBeUndefined();
    const k = key();
    expect(parsePayloadKeys(k)!.map((x) => x.id)).toEqual(['default']);
    expect(parsePayloadKeys(`new:${key()}, old:${key()}`)!.map((x) => x.id)).toEqual(['new', 'old']);
    expect(payloadDataConverter({ TERRAPIN_PAYLOAD_KEY: k })).toEqual({ payloadCodecs: [expect.any(AesGcmPayloadCodec)], failureConverterPath: FAILURE_CONVERTER_PATH });
  });

  test('bad settings are refused with the reason and never the key', () => {
    const short = randomBytes(16).toString('base64');
    expect(() => parsePayloadKeys(short)).toThrow(new PayloadKeyError('TERRAPIN_PAYLOAD_KEY: key "default" must be 32 bytes (base64 of `openssl rand -base64 32`), got 16'));
    expect(() => parsePayloadKeys('k1:not base64!')).toThrow(/key "k1" is not base64/);
    expect(() => parsePayloadKeys(`${key()},${key()}`)).toThrow(/each needs an id/);
    expect(() => parsePayloadKeys(`a:${key()},a:${key()}`)).toThrow(/"a" appears twice/);
    expect(() => parsePayloadKeys(`bad id:${key()}`)).toThrow(/invalid id/);
    try {
      parsePayloadKeys(`k1:${short}`);
    } catch (err) {
      expect((err as Error).message).not.toContain(short);
    }
  });
});

describe('AES-256-GCM codec', () => {
  test('round-trips; the ciphertext shows neither the value nor its encoding; every encryption differs', async () => {
    const codec = codecFor(`k1:${key()}`);
    const plain = payload({ secret: 'hunter2-marker' });
    const [a] = await codec.encode([plain]);
    const [b] = await codec.encode([plain]);
    expect(Buffer.from(a!.metadata!.encoding!).toString()).toBe(ENCODING);
    expect(Buffer.from(a!.metadata!['encryption-key-id']!).toString()).toBe('k1');
    expect(Object.keys(a!.metadata!).sort()).toEqual(['encoding', 'encryption-key-id']);
    expect(Buffer.from(a!.data!).includes('hunter2')).toBe(false);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
    const [back] = await codec.decode([a!]);
    expect(value(back!)).toEqual({ secret: 'hunter2-marker' });
    expect(payloadToJson(back!)).toEqual(payloadToJson(plain));
  });

  test('rotation: the first key encrypts, an old key listed after it still decrypts', async () => {
    const old = `k0:${key()}`;
    const [sealedWithOld] = await codecFor(old).encode([payload('before rotation')]);
    const rotated = codecFor(`k1:${key()},${old}`);
    expect(value((await rotated.decode([sealedWithOld!]))[0]!)).toBe('before rotation');
    const [sealedNow] = await rotated.encode([payload('after')]);
    expect(Buffer.from(sealedNow!.metadata!['encryption-key-id']!).toString()).toBe('k1');
    // Dropping k0 too early: that history no longer reads, and the error says which key is missing.
    await expect(codecFor(`k1:${key()}`).decode([sealedWithOld!])).rejects.toThrow(new PayloadDecryptError('payload encrypted with key id "k0", which TERRAPIN_PAYLOAD_KEY does not list'));
  });

  test('a wrong key under the same id, altered data, or a ciphertext moved to another id fail clearly', async () => {
    const [sealed] = await codecFor(`k1:${key()}`).encode([payload('x')]);
    await expect(codecFor(`k1:${key()}`).decode([sealed!])).rejects.toThrow(/key id "k1" does not decrypt: TERRAPIN_PAYLOAD_KEY holds a different key/);
    const k = `k1:${key()}`;
    const [good] = await codecFor(k).encode([payload('y')]);
    const altered = Buffer.from(good!.data!);
    altered[altered.length - 20]! ^= 1;
    await expect(codecFor(k).decode([{ ...good!, data: altered }])).rejects.toThrow(PayloadDecryptError);
    const raw = k.slice(3);
    const [moved] = await codecFor(`a:${raw}`).encode([payload('z')]);
    const relabelled = { ...moved!, metadata: { ...moved!.metadata, 'encryption-key-id': Buffer.from('b') } };
    await expect(codecFor(`a:${raw},b:${raw}`).decode([relabelled])).rejects.toThrow(/key id "b" does not decrypt/);
  });

  test('payloads written before encryption was turned on still read', async () => {
    const plain = payload({ old: true });
    expect(await codecFor(key()).decode([plain])).toEqual([plain]);
  });
});

describe('codec endpoint', () => {
  const token = randomBytes(24).toString('hex');
  const payloadKey = `k1:${key()}`;
  const uiOrigin = 'https://temporal-ui.example.com';
  let web: WebhookServer;
  let base: string;

  beforeAll(async () => {
    const config = loadConfig({ APP_ID: '1', PRIVATE_KEY: privateKeyPem(), WEBHOOK_SECRET: 's', PORT: '0' });
    // No Temporal is needed: the endpoint only encodes and decodes. A lazy connection is never dialled.
    const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    const codec = codecEndpointFromEnv({ TERRAPIN_CODEC_TOKEN: token, TERRAPIN_PAYLOAD_KEY: payloadKey, TEMPORAL_UI_URL: `${uiOrigin}/namespaces/default` });
    web = await startWebhookServer({ config, client, logger: silentLogger, port: 0, codec });
    base = `http://127.0.0.1:${web.port}`;
  });
  afterAll(() => web?.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${token}` }) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  test('encode then decode round-trips in the codec-server JSON form; the key decodes what the app wrote', async () => {
    const plain = payloadToJson(payload({ plan: 'secret plan output' }));
    const encoded = await post('/codec/encode', { payloads: [plain] });
    expect(encoded.status).toBe(200);
    const { payloads: sealed } = (await encoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    expect(Buffer.from(sealed[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCODING);
    expect(Buffer.from(sealed[0]!.data, 'base64').includes('secret plan')).toBe(false);
    const decoded = await post('/codec/decode', { payloads: sealed });
    expect(decoded.status).toBe(200);
    expect(await decoded.json()).toEqual({ payloads: [plain] });
    // What a worker with the same key stored decodes here too.
    const [fromApp] = await codecFor(payloadKey).encode([payload('from the worker')]);
    const viaEndpoint = (await (await post('/codec/decode', { payloads: [payloadToJson(fromApp!)] })).json()) as { payloads: Array<{ data: string }> };
    expect(Buffer.from(viaEndpoint.payloads[0]!.data, 'base64').toString()).toBe('"from the worker"');
  });

  test('refused without the token, with a wrong one, or with another method; bad bodies and wrong keys are 4xx', async () => {
    const sealed = payloadToJson((await codecFor(payloadKey).encode([payload('s')]))[0]!);
    expect((await post('/codec/decode', { payloads: [sealed] }, {})).status).toBe(401);
    expect((await post('/codec/decode', { payloads: [sealed] }, { authorization: `Bearer ${token}x` })).status).toBe(401);
    expect((await fetch(`${base}/codec/decode`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(405);
    expect((await post('/codec/decode', { nope: 1 })).status).toBe(400);
    const foreign = payloadToJson((await codecFor(`k1:${key()}`).encode([payload('s')]))[0]!);
    const wrongKey = await post('/codec/decode', { payloads: [foreign] });
    expect(wrongKey.status).toBe(422);
    expect(((await wrongKey.json()) as { error: string }).error).toMatch(/key id "k1" does not decrypt/);
  });

  test('CORS: the Temporal UI origin gets a preflight answer and CORS headers; other origins do not', async () => {
    const preflight = await fetch(`${base}/codec/decode`, { method: 'OPTIONS', headers: { origin: uiOrigin, 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(uiOrigin);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const evil = await fetch(`${base}/codec/decode`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const fromUi = await post('/codec/encode', { payloads: [] }, { authorization: `Bearer ${token}`, origin: uiOrigin });
    expect(fromUi.headers.get('access-control-allow-origin')).toBe(uiOrigin);
  });

  test('off without TERRAPIN_CODEC_TOKEN (the path is unknown); a short token or a token without a key stops the start', async () => {
    expect(codecEndpointFromEnv({ TERRAPIN_PAYLOAD_KEY: payloadKey })).toBeUndefined();
    expect(() => codecEndpointFromEnv({ TERRAPIN_PAYLOAD_KEY: payloadKey, TERRAPIN_CODEC_TOKEN: 'short' })).toThrow(/at least 32 characters/);
    expect(() => codecEndpointFromEnv({ TERRAPIN_CODEC_TOKEN: token })).toThrow(/TERRAPIN_PAYLOAD_KEY is not/);
    const config = loadConfig({ APP_ID: '1', PRIVATE_KEY: privateKeyPem(), WEBHOOK_SECRET: 's', PORT: '0' });
    const off = await startWebhookServer({ config, client: new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) }), logger: silentLogger, port: 0, codec: null });
    try {
      expect((await fetch(`http://127.0.0.1:${off.port}/codec/decode`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    } finally {
      await off.close();
    }
  });
});
