// What the entries do with secrets once the config is loaded: drop them from the environment, warn about
// credential files other users can read, and keep the data dir to the bot alone.
import { mkdtemp, rm, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { dropSecretsFromEnv, ensureDataDir, exposedSecretFiles, SECRET_ENV } from '../../app/process-lifecycle.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'terrapin-lifecycle-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('secrets after loading', () => {
  test('the App key, webhook secret, Temporal API key and client secret leave the environment; the rest stays', () => {
    const env: Record<string, string | undefined> = { PRIVATE_KEY: 'k', WEBHOOK_SECRET: 'w', TEMPORAL_API_KEY: 't', GITHUB_CLIENT_SECRET: 'c', APP_ID: '1', PATH: '/usr/bin', PRIVATE_KEY_PATH: '/etc/terrapin/key.pem' };
    dropSecretsFromEnv(env);
    expect(env).toEqual({ APP_ID: '1', PATH: '/usr/bin', PRIVATE_KEY_PATH: '/etc/terrapin/key.pem' });
    expect(SECRET_ENV).toEqual(expect.arrayContaining(['PRIVATE_KEY', 'WEBHOOK_SECRET', 'TEMPORAL_API_KEY', 'GITHUB_CLIENT_SECRET']));
  });

  test('a key file or .env readable by group or others is reported; 0600 files and missing ones are not', async () => {
    const key = join(dir, 'key.pem');
    const dotEnv = join(dir, '.env');
    await writeFile(key, 'k', { mode: 0o644 });
    await writeFile(dotEnv, 'x', { mode: 0o600 });
    expect(exposedSecretFiles({ PRIVATE_KEY_PATH: key }, dotEnv)).toEqual([key]);
    await chmod(key, 0o600);
    await chmod(dotEnv, 0o640);
    expect(exposedSecretFiles({ PRIVATE_KEY_PATH: key }, dotEnv)).toEqual([dotEnv]);
    expect(exposedSecretFiles({}, join(dir, 'missing.env'))).toEqual([]);
  });

  test('the data dir is created 0700, and an existing open one is closed to other users', async () => {
    const fresh = join(dir, 'data');
    ensureDataDir(fresh);
    expect((await stat(fresh)).mode & 0o777).toBe(0o700);
    const open = join(dir, 'open');
    await mkdir(open, { mode: 0o755 });
    await chmod(open, 0o755);
    ensureDataDir(open);
    expect((await stat(open)).mode & 0o777).toBe(0o700);
  });
});
