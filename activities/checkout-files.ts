// Reading files a pull request controls, and writing files only the bot controls.
// A checkout is attacker-shaped: any path in it may be a symlink (to /proc/self/environ, the App's key,
// another repository's work dir), a FIFO that blocks a read forever, or a file of many gigabytes. Files
// are read only when, after every symlink is resolved, they are regular files inside the checkout and
// under a size cap; refusals name the path relative to the repository and never quote the content.
// Bot-written files (plans, logs, outputs) are opened without following a symlink at their own name.
import { constants } from 'node:fs';
import { mkdir, open, readlink, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, posix, relative, resolve, sep } from 'node:path';

/** Terraform sources, tfvars and hook scripts are small; anything bigger is not read. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

export class CheckoutFileError extends Error {
  /** The path as the repository names it. */
  readonly path: string;
  constructor(path: string, why: string) {
    super(`${path} ${why}`);
    this.path = path;
  }
}

export interface CheckoutFileOptions {
  maxBytes?: number;
}

const inside = (root: string, path: string) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/** The repository-relative form of `rel` (no `./`, no `..` segments), or a refusal. */
function cleanRelative(rel: string): string {
  if (rel === '' || isAbsolute(rel) || rel.includes('\0')) throw new CheckoutFileError(JSON.stringify(rel), 'is not a path inside the repository');
  const clean = posix.normalize(rel.replaceAll('\\', '/')).replace(/^(\.\/)+/, '');
  if (clean === '..' || clean.startsWith('../')) throw new CheckoutFileError(rel, 'is outside the repository');
  return clean;
}

/** The real path of `rel` in the checkout, refused when it leaves the checkout after symlinks are resolved. */
async function resolveInside(root: string, rel: string): Promise<{ clean: string; realRoot: string; real: string }> {
  const clean = cleanRelative(rel);
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(resolve(realRoot, clean));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CheckoutFileError(clean, 'does not exist in the repository');
    if (code === 'ELOOP') throw new CheckoutFileError(clean, 'is a symbolic link loop');
    throw new CheckoutFileError(clean, `cannot be read (${code ?? 'error'})`);
  }
  if (!inside(realRoot, real)) throw new CheckoutFileError(clean, 'is a symbolic link to a path outside the repository');
  return { clean, realRoot, real };
}

/**
 * Opens a checkout file for reading after the checks, and checks again what was opened: a symlink swapped
 * in between (by code running in the checkout) is caught by O_NOFOLLOW or by the opened file's own path.
 */
async function openCheckoutFile(root: string, rel: string, opts: CheckoutFileOptions) {
  const { clean, realRoot, real } = await resolveInside(root, rel);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new CheckoutFileError(clean, 'is a symbolic link that changed while it was read');
    throw new CheckoutFileError(clean, `cannot be read (${code ?? 'error'})`);
  }
  try {
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => real);
    if (!inside(realRoot, opened)) throw new CheckoutFileError(clean, 'is a symbolic link to a path outside the repository');
    const stats = await handle.stat();
    if (!stats.isFile()) throw new CheckoutFileError(clean, stats.isDirectory() ? 'is a directory, not a file' : 'is not a regular file');
    if (stats.size > maxBytes) throw new CheckoutFileError(clean, `is larger than ${maxBytes} bytes`);
    return { handle, clean, real, size: stats.size, maxBytes };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The text of a regular file inside the checkout; throws CheckoutFileError naming the path otherwise. */
export async function readCheckoutFile(root: string, rel: string, opts: CheckoutFileOptions = {}): Promise<string> {
  const { handle, clean, maxBytes } = await openCheckoutFile(root, rel, opts);
  try {
    // Read at most one byte past the cap: a file that grew after fstat is refused too.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new CheckoutFileError(clean, `is larger than ${maxBytes} bytes`);
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Checks that `rel` is a regular file inside the checkout (for files terraform reads itself); returns its real path. */
export async function assertCheckoutFile(root: string, rel: string, opts: CheckoutFileOptions = {}): Promise<string> {
  const { handle, real } = await openCheckoutFile(root, rel, opts);
  await handle.close();
  return real;
}

/** The real path of a directory inside the checkout (a project dir), refused when a symlink leads it outside. */
export async function checkoutDir(root: string, rel: string): Promise<string> {
  const clean = rel === '.' || rel === '' ? '.' : cleanRelative(rel);
  if (clean === '.') return realpath(root);
  const { real } = await resolveInside(root, clean);
  return real;
}

/** `path` relative to the checkout, for messages that must not show server paths. */
export function repoRelative(root: string, path: string): string {
  return relative(root, path) || '.';
}

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** Writes a bot-owned file; a symlink planted at its name is refused (ELOOP), never followed. */
export async function writeBotFile(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const handle = await open(path, WRITE_FLAGS, mode);
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/**
 * Where a bot file missing from this worker's disk may still be found: the artifact store, which knows the
 * files the plan activity stored by the path it wrote them at (another worker's, or a deleted work dir's).
 * The bytes come back verified against their sha256; a tampered artifact throws, never reads as the file.
 */
export interface BotFileSource {
  fetchByPath(path: string): Promise<Buffer | undefined>;
}

const botFileSources = new Set<BotFileSource>();

/** Lets readBotFile fetch files missing here from `source` (a worker's artifact store); until removed. */
export function addBotFileSource(source: BotFileSource): void {
  botFileSources.add(source);
}

export function removeBotFileSource(source: BotFileSource): void {
  botFileSources.delete(source);
}

/**
 * Puts a fetched file back in place, so later reads (and a policy check's sandbox, which mounts the file)
 * find it here. Best effort: the content is returned either way. Only into the bot's own dirs: not when a
 * symlink anywhere on the way leads elsewhere, and a symlink planted at the name is refused (O_NOFOLLOW).
 */
async function putBack(path: string, content: Buffer): Promise<void> {
  const dir = dirname(resolve(path));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if ((await realpath(dir)) !== dir) return;
  await writeBotFile(path, content);
}

async function fetchMissingBotFile(path: string): Promise<Buffer | undefined> {
  for (const source of botFileSources) {
    const content = await source.fetchByPath(resolve(path));
    if (content === undefined) continue;
    await putBack(path, content).catch(() => undefined);
    return content;
  }
  return undefined;
}

/**
 * Reads a bot-owned file without following a symlink at its name. A file that is not here is fetched from
 * the artifact store when one knows it (see addBotFileSource); otherwise the ENOENT is thrown as before.
 */
export async function readBotFile(path: string): Promise<string> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const fetched = await fetchMissingBotFile(path);
    if (fetched === undefined) throw err;
    return fetched.toString('utf8');
  }
  try {
    if (!(await handle.stat()).isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EINVAL' });
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
