// `node app/main.ts` as a real process: embedded Temporal + worker + webhook server, stopped by SIGTERM.
import { spawn, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPortFree } from '../../app/temporal.ts';
import { freePort } from '../helpers/free-port.ts';

const MAIN = fileURLToPath(new URL('../../app/main.ts', import.meta.url));
// Each test its own data dir (and so its own embedded Temporal SQLite file).
let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'terrapin-main-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

/** A free port whose UI companion (port + 1000) is free and reserved too. */
const freeTemporalPort = () => freePort({ companions: [1000] });

function startMain(env: Record<string, string>) {
  const { TEMPORAL_ADDRESS: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [MAIN], { env: { ...inherited, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (output.stdout += d));
  child.stderr.on('data', (d: Buffer) => (output.stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output, exited };
}

async function waitForHealth(url: string, exited: Promise<unknown>, timeoutMs: number): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gone) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(gone ? 'app/main.ts exited before /healthz answered' : `no answer from ${url} in ${timeoutMs} ms`);
}

describe('app/main.ts', () => {
  it('starts everything, and SIGTERM stops it all with exit 0, freeing the Temporal ports', async () => {
    const [httpPort, temporalPort] = [await freePort(), await freeTemporalPort()];
    const run = startMain({
      APP_ID: '12345',
      PRIVATE_KEY: privateKey,
      WEBHOOK_SECRET: 'main-test-secret',
      TERRAPIN_DATA_DIR: dataDir,
      PORT: String(httpPort),
      TERRAPIN_EMBEDDED_TEMPORAL_PORT: String(temporalPort),
    });
    try {
      await waitForHealth(`http://127.0.0.1:${httpPort}/healthz`, run.exited, 90_000);
    } catch (err) {
      run.child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\nstdout:\n${run.output.stdout}\nstderr:\n${run.output.stderr}`);
    }
    // The embedded server is really up (so "freed" below means something).
    expect(await isPortFree(temporalPort)).toBe(false);
    expect(await isPortFree(temporalPort + 1000)).toBe(false);

    run.child.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000));
    const exit = await Promise.race([run.exited, timeout]);
    if (exit === 'timeout') run.child.kill('SIGKILL');
    expect(exit, run.output.stderr).toEqual({ code: 0, signal: null });

    expect(await isPortFree(temporalPort)).toBe(true);
    expect(await isPortFree(temporalPort + 1000)).toBe(true);
    expect(await isPortFree(httpPort)).toBe(true);
    // No dev server left behind on our SQLite file.
    const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(processes).not.toContain(join(dataDir, 'temporal', 'temporal.sqlite'));
  });

  it('a SIGTERM during startup waits for it, then stops everything: no dev server left behind', async () => {
    const temporalPort = await freeTemporalPort();
    const run = startMain({
      APP_ID: '12345',
      PRIVATE_KEY: privateKey,
      WEBHOOK_SECRET: 'main-test-secret',
      TERRAPIN_DATA_DIR: dataDir,
      PORT: String(await freePort()),
      TERRAPIN_EMBEDDED_TEMPORAL_PORT: String(temporalPort),
      LOG_LEVEL: 'info',
    });
    const deadline = Date.now() + 60_000;
    while (!run.output.stdout.includes('starting embedded Temporal dev server') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(run.output.stdout).not.toContain('terrapin running');
    run.child.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000));
    const exit = await Promise.race([run.exited, timeout]);
    if (exit === 'timeout') run.child.kill('SIGKILL');
    expect(exit, run.output.stderr).toEqual({ code: 0, signal: null });
    expect(await isPortFree(temporalPort)).toBe(true);
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(`--port ${temporalPort} `);
  });

  it('exits 1 with one clear line, no stack trace, on a configuration error', async () => {
    // Without an App at all, a development start runs the manifest flow (test/app/first-run.test.ts);
    // in production it is a configuration error like any other.
    const run = startMain({ NODE_ENV: 'production', APP_ID: '', WEBHOOK_SECRET: 's', PRIVATE_KEY: privateKey, TERRAPIN_DATA_DIR: dataDir });
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.output.stderr).toBe('terrapin: Missing required environment: APP_ID. See .env.example.\n');
    expect(run.output.stdout).toBe('');

    const noSecret = startMain({ APP_ID: '1', WEBHOOK_SECRET: '', PRIVATE_KEY: privateKey, TERRAPIN_DATA_DIR: dataDir });
    expect((await noSecret.exited).code).toBe(1);
    expect(noSecret.output.stderr).toBe('terrapin: Missing required environment: WEBHOOK_SECRET. See .env.example.\n');
  });

  it('exits 1 with one clear line when the embedded Temporal port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const run = startMain({
        APP_ID: '1',
        WEBHOOK_SECRET: 's',
        PRIVATE_KEY: privateKey,
        TERRAPIN_DATA_DIR: dataDir,
        PORT: String(await freePort()),
        TERRAPIN_EMBEDDED_TEMPORAL_PORT: String(port),
      });
      const { code } = await run.exited;
      expect(code).toBe(1);
      expect(run.output.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.output.stderr).toMatch(new RegExp(`^terrapin: Port ${port} is in use`));
    } finally {
      blocker.close();
    }
  });
});
