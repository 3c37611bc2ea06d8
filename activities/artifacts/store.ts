// The artifact store: plans, what reviewers saw, and run logs, addressed by their sha256, so that any worker
// can apply a plan another worker made. Written once (the same bytes have the same name), verified on every
// read: a row or file that no longer hashes to its name is refused, never handed to terraform.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { writeBotFile } from '../checkout-files.ts';

export interface ArtifactStore {
  /** Stores the bytes (a no-op when they are already there) and returns their sha256, hex. */
  put(content: Buffer): Promise<string>;
  /** The bytes with this sha256, verified; undefined when the store has none. Throws ArtifactCorrupt. */
  get(sha256: string): Promise<Buffer | undefined>;
  /**
   * Records that the bot file at `path` (absolute, as the workflow passes it on) has this content, so a
   * worker without that file reads it from here (readBotFile). Re-recording a path points it at the new bytes.
   */
  alias(path: string, sha256: string): Promise<void>;
  /** The verified bytes last recorded for `path`; undefined when none were. Throws ArtifactCorrupt. */
  fetchByPath(path: string): Promise<Buffer | undefined>;
  /** Where the artifacts are, for logs (no credentials). */
  readonly describe: string;
  close(): Promise<void>;
}

/** Raised when stored bytes do not hash to their name: tampered or damaged, never used. */
export class ArtifactCorrupt extends Error {
  readonly sha256: string;
  constructor(sha256: string, actual: string) {
    super(`artifact ${sha256} is corrupt: its content has sha256 ${actual}`);
    this.name = 'ArtifactCorrupt';
    this.sha256 = sha256;
  }
}

export const sha256Of = (content: Buffer): string => createHash('sha256').update(content).digest('hex');

const SHA256 = /^[0-9a-f]{64}$/;

/** A name a store may look up: 64 lowercase hex digits, nothing a path or query could be made of. */
export function checkSha256(sha256: string): string {
  if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${JSON.stringify(sha256).slice(0, 80)}`);
  return sha256;
}

/** The stored bytes, if they are what was asked for. */
export function verified(sha256: string, content: Buffer): Buffer {
  const actual = sha256Of(content);
  if (actual !== sha256) throw new ArtifactCorrupt(sha256, actual);
  return content;
}

/** Stores a file's content. */
export async function putFile(store: ArtifactStore, path: string): Promise<string> {
  return store.put(await readFile(path));
}

/** Stores a bot file's content and records its path, for workers that do not have the file. */
export async function putBotFile(store: ArtifactStore, path: string): Promise<string> {
  const sha256 = await putFile(store, path);
  await store.alias(resolve(path), sha256);
  return sha256;
}

/** Writes the artifact to a bot file (mode 0600: plans hold variable values); false when the store has none. */
export async function getToFile(store: ArtifactStore, sha256: string, path: string): Promise<boolean> {
  const content = await store.get(sha256);
  if (!content) return false;
  await writeBotFile(path, content);
  return true;
}
