// Reading files a pull request controls: only regular files inside the checkout, under a size cap, and
// refusals that name the path but never show what is behind it. Real symlinks, FIFOs and big files.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { assertCheckoutFile, CheckoutFileError, checkoutDir, readBotFile, readCheckoutFile, writeBotFile } from '../../activities/checkout-files.ts';

const SECRET = 'terrapin-checkout-files-secret-7d1f';
let base: string;
let repo: string;
let outside: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'terrapin-checkout-files-'));
  repo = join(base, 'repo');
  outside = join(base, 'outside');
  await mkdir(join(repo, 'infra'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(outside, 'secret.txt'), SECRET);
  await writeFile(join(repo, 'infra', 'main.tf'), 'resource "terraform_data" "x" {}\n');
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<CheckoutFileError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckoutFileError);
  expect((err as Error).message).not.toContain(SECRET);
  return err as CheckoutFileError;
}

describe('readCheckoutFile', () => {
  test('reads a regular file inside the checkout, also through a symlink that stays inside', async () => {
    expect(await readCheckoutFile(repo, 'infra/main.tf')).toContain('terraform_data');
    await symlink('infra/main.tf', join(repo, 'alias.tf'));
    expect(await readCheckoutFile(repo, './alias.tf')).toContain('terraform_data');
  });

  test('refuses a symlink to /proc/self/environ, naming the path relative to the repository', async () => {
    process.env.TERRAPIN_CHECKOUT_FILES_TEST = SECRET;
    try {
      await symlink('/proc/self/environ', join(repo, 'infra', 'env.tf'));
      const err = await refusal(readCheckoutFile(repo, 'infra/env.tf'));
      expect(err.message).toBe('infra/env.tf is a symbolic link to a path outside the repository');
      expect(err.path).toBe('infra/env.tf');
    } finally {
      delete process.env.TERRAPIN_CHECKOUT_FILES_TEST;
    }
  });

  test('refuses a symlink to a file outside, and a file under a symlinked parent dir', async () => {
    await symlink(join(outside, 'secret.txt'), join(repo, 'steal.tfvars'));
    expect((await refusal(readCheckoutFile(repo, 'steal.tfvars'))).message).toBe('steal.tfvars is a symbolic link to a path outside the repository');
    await symlink(outside, join(repo, 'linked'));
    expect((await refusal(readCheckoutFile(repo, 'linked/secret.txt'))).message).toBe('linked/secret.txt is a symbolic link to a path outside the repository');
  });

  test('refuses .. and absolute paths before touching the file system', async () => {
    expect((await refusal(readCheckoutFile(repo, '../outside/secret.txt'))).message).toBe('../outside/secret.txt is outside the repository');
    expect((await refusal(readCheckoutFile(repo, 'infra/../../outside/secret.txt'))).message).toContain('is outside the repository');
    expect((await refusal(readCheckoutFile(repo, join(outside, 'secret.txt')))).message).toContain('is not a path inside the repository');
  });

  test('refuses a FIFO without waiting for a writer, and a directory', async () => {
    execFileSync('mkfifo', [join(repo, 'pipe.tf')]);
    const started = Date.now();
    expect((await refusal(readCheckoutFile(repo, 'pipe.tf'))).message).toBe('pipe.tf is not a regular file');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await refusal(readCheckoutFile(repo, 'infra'))).message).toBe('infra is a directory, not a file');
  });

  test('refuses a file over the size cap without reading it', async () => {
    await writeFile(join(repo, 'huge.tf'), '');
    await truncate(join(repo, 'huge.tf'), 8 * 1024 * 1024 * 1024);
    expect((await refusal(readCheckoutFile(repo, 'huge.tf'))).message).toBe(`huge.tf is larger than ${1024 * 1024} bytes`);
    await writeFile(join(repo, 'small.tf'), 'x'.repeat(11));
    expect((await refusal(readCheckoutFile(repo, 'small.tf', { maxBytes: 10 }))).message).toBe('small.tf is larger than 10 bytes');
  });

  test('says plainly when a file does not exist or a symlink loops', async () => {
    expect((await refusal(readCheckoutFile(repo, 'nope.tf'))).message).toBe('nope.tf does not exist in the repository');
    await symlink('loop-b.tf', join(repo, 'loop-a.tf'));
    await symlink('loop-a.tf', join(repo, 'loop-b.tf'));
    expect((await refusal(readCheckoutFile(repo, 'loop-a.tf'))).message).toBe('loop-a.tf is a symbolic link loop');
  });
});

describe('assertCheckoutFile and checkoutDir', () => {
  test('assertCheckoutFile returns the real path of a good file and refuses the same things as a read', async () => {
    expect(await assertCheckoutFile(repo, 'infra/main.tf')).toMatch(/\/repo\/infra\/main\.tf$/);
    await symlink('/proc/self/environ', join(repo, 'link.tfvars'));
    expect((await refusal(assertCheckoutFile(repo, 'link.tfvars'))).message).toBe('link.tfvars is a symbolic link to a path outside the repository');
  });

  test('checkoutDir refuses a project dir that is a symlink out of the checkout', async () => {
    expect(await checkoutDir(repo, 'infra')).toMatch(/\/repo\/infra$/);
    await symlink(outside, join(repo, 'escape'));
    expect((await refusal(checkoutDir(repo, 'escape'))).message).toBe('escape is a symbolic link to a path outside the repository');
  });
});

describe('bot files', () => {
  test('writeBotFile refuses to write through a symlink planted at its name; the target is untouched', async () => {
    const planted = join(repo, 'plan.json');
    await symlink(join(outside, 'secret.txt'), planted);
    await expect(writeBotFile(planted, 'overwritten')).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe(SECRET);
  });

  test('readBotFile refuses a symlink and writes files mode 0600', async () => {
    await symlink(join(outside, 'secret.txt'), join(repo, 'plan.diff.txt'));
    await expect(readBotFile(join(repo, 'plan.diff.txt'))).rejects.toMatchObject({ code: 'ELOOP' });
    await writeBotFile(join(base, 'mine.txt'), 'ok');
    expect(await readBotFile(join(base, 'mine.txt'))).toBe('ok');
    const { statSync } = await import('node:fs');
    expect(statSync(join(base, 'mine.txt')).mode & 0o777).toBe(0o600);
  });
});
