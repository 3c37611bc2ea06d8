// Encrypted history: an AES-256-GCM payload codec (TERRAPIN_PAYLOAD_KEY) so that workflow and activity inputs,
// results, signals, queries, memos and failure messages stored in Temporal cannot be read without the key.
// Search attributes are not payloads the codec sees: Temporal's visibility must read them (list, filter), so they
// stay plaintext (repository, PR number, project, kind, actor, SHA, counts — no plan contents or secrets).
//
// TERRAPIN_PAYLOAD_KEY is `base64` (one key, id "default") or `kid1:base64,kid0:base64`: the FIRST key encrypts,
// every listed key decrypts (rotation: put the new key first, keep the old ones until no history needs them).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';

type Env = Record<string, string | undefined>;

export const ENCODING = 'binary/encrypted';
const ENCODING_KEY = 'encoding';
const KEY_ID_KEY = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** A path, not an instance: the workflow bundle must load it inside the sandbox as well. */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.ts', import.meta.url));

export interface PayloadKey {
  id: string;
  key: Buffer;
}

/** A key setting that cannot be used: the message names the variable but never a key's bytes. */
export class PayloadKeyError extends Error {}

/** Decrypting failed: a missing key id, a wrong key, or tampered ciphertext. */
export class PayloadDecryptError extends Error {}

/** Parses TERRAPIN_PAYLOAD_KEY; undefined when it is unset or empty (no encryption). */
export function parsePayloadKeys(value: string | undefined, variable = 'TERRAPIN_PAYLOAD_KEY'): PayloadKey[] | undefined {
  const entries = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (!entries.length) return undefined;
  const keys: PayloadKey[] = [];
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? 'default' : entry.slice(0, colon);
    const encoded = colon < 0 ? entry : entry.slice(colon + 1);
    if (colon < 0 && entries.length > 1) throw new PayloadKeyError(`${variable}: with several keys, each needs an id (kid:base64)`);
    if (!KEY_ID.test(id)) throw new PayloadKeyError(`${variable}: key #${index + 1} has an invalid id (letters, digits, . _ - ; at most 64)`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new PayloadKeyError(`${variable}: key "${id}" is not base64`);
    const key = Buffer.from(encoded, 'base64');
    if (key.length !== 32) throw new PayloadKeyError(`${variable}: key "${id}" must be 32 bytes (base64 of \`openssl rand -base64 32\`), got ${key.length}`);
    if (keys.some((k) => k.id === id)) throw new PayloadKeyError(`${variable}: key id "${id}" appears twice`);
    keys.push({ id, key });
  }
  return keys;
}

/** AES-256-GCM over the whole serialized payload (metadata included, so the payload's encoding hides too). */
export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly encryptWith: PayloadKey;
  private readonly byId: Map<string, Buffer>;

  constructor(keys: PayloadKey[]) {
    if (!keys.length) throw new PayloadKeyError('at least one payload key is needed');
    this.encryptWith = keys[0]!;
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(CIPHER, this.encryptWith.key, iv);
      // The key id is authenticated: moving a ciphertext under another id fails to decrypt.
      cipher.setAAD(Buffer.from(this.encryptWith.id));
      const body = Buffer.concat([cipher.update(serializePayload(payload)), cipher.final()]);
      return {
        metadata: { [ENCODING_KEY]: Buffer.from(ENCODING), [KEY_ID_KEY]: Buffer.from(this.encryptWith.id) },
        data: Buffer.concat([iv, body, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.[ENCODING_KEY]) !== ENCODING) return payload; // written before encryption was on
      const id = text(payload.metadata?.[KEY_ID_KEY]) ?? '';
      const key = this.byId.get(id);
      if (!key) throw new PayloadDecryptError(`payload encrypted with key id "${id}", which TERRAPIN_PAYLOAD_KEY does not list`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptError(`encrypted payload (key id "${id}") is truncated`);
      try {
        const decipher = createDecipheriv(CIPHER, key, data.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(id));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
        return deserializePayload(plain);
      } catch {
        throw new PayloadDecryptError(`payload with key id "${id}" does not decrypt: TERRAPIN_PAYLOAD_KEY holds a different key under that id, or the data was altered`);
      }
    });
  }
}

/**
 * The data converter every client and worker uses: undefined without a key (Temporal's default). With one,
 * the codec, and a failure converter that moves failure messages and stack traces into an encoded payload.
 */
export function payloadDataConverter(env: Env = process.env): DataConverter | undefined {
  const keys = parsePayloadKeys(env.TERRAPIN_PAYLOAD_KEY);
  if (!keys) return undefined;
  return {
    payloadCodecs: [new AesGcmPayloadCodec(keys)],
    failureConverterPath: FAILURE_CONVERTER_PATH,
  };
}

// A payload as JSON with base64 bytes (the codec-server wire form too): no protobuf dependency here.
export interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export function payloadToJson(payload: Payload): JsonPayload {
  const metadata = Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]));
  return { metadata, data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64') };
}

export function payloadFromJson(json: JsonPayload): Payload {
  if (typeof json !== 'object' || json === null) throw new TypeError('a payload must be an object');
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(json.metadata ?? {})) {
    if (typeof v !== 'string') throw new TypeError(`payload metadata "${k}" must be a base64 string`);
    metadata[k] = Buffer.from(v, 'base64');
  }
  if (json.data !== undefined && typeof json.data !== 'string') throw new TypeError('payload data must be a base64 string');
  return { metadata, data: Buffer.from(json.data ?? '', 'base64') };
}

function serializePayload(payload: Payload): Buffer {
  return Buffer.from(JSON.stringify(payloadToJson(payload)));
}

function deserializePayload(bytes: Buffer): Payload {
  return payloadFromJson(JSON.parse(bytes.toString('utf8')) as JsonPayload);
}

function text(bytes: Uint8Array | null | undefined): string | undefined {
  return bytes ? Buffer.from(bytes).toString('utf8') : undefined;
}
