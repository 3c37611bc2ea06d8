// The real entry points as processes: `npm start` (app/main.ts) serves one /metrics for server and worker, and
// `npm run worker` (app/worker.ts) serves its own on TERRAPIN_METRICS_PORT; both append the Temporal SDK's
// worker metrics (temporal_*) from the Runtime's telemetry, and /readyz says ready once the worker polls.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.ts';
import { startTemporal } from './support.ts';

const entry = (name: string) => fileURLToPath(new URL(`../../app/${name}.ts`, import.meta.url));
const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

let dataDir: string;
let stops: (() => Promise<unknown>)[] = [];
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'terrapin-metrics-process-'));
  stops = [];
});
afterEach(async () => {
  for (const stop of stops.reverse()) await stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function start(name: 'main' | 'worker', env: Record<string, string>) {
  const { TEMPORAL_ADDRESS: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [entry(name)], {
    env: { ...inherited, LOG_LEVEL: 'warn', APP_ID: '12345', PRIVATE_KEY: privateKey, WEBHOOK_SECRET: 'metrics-secret', TERRAPIN_DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  stops.push(async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  });
  return { output: () => output, exited };
}

/** Polls `url` until `ok(status, body)`; fails with the process's output if it never is or the process exits. */
async function until(url: string, ok: (status: number, body: string) => boolean, proc: ReturnType<typeof start>, timeoutMs = 90_000): Promise<string> {
  let gone = false;
  void proc.exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline && !gone) {
    const answer = await fetch(url).then(async (r) => ({ status: r.status, body: await r.text() }), () => undefined);
    if (answer && ok(answer.status, answer.body)) return answer.body;
    last = answer ? `${answer.status} ${answer.body.slice(0, 200)}` : 'no answer';
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${url}: ${gone ? 'process exited' : `last answer ${last}`}\noutput:\n${proc.output()}`);
}

const hasSdkMetrics = (body: string) => /^temporal_\w+/m.test(body);

describe('metrics of the real processes', () => {
  it('`npm start`: one endpoint with Terrapin\'s and the SDK\'s metrics; /readyz once the worker polls', async () => {
    const port = await freePort();
    const proc = start('main', { PORT: String(port), TERRAPIN_EMBEDDED_TEMPORAL_PORT: String(await freePort({ companions: [1000] })) });
    expect(await until(`http://127.0.0.1:${port}/readyz`, (s) => s === 200, proc)).toBe('ready\n');
    const body = await until(`http://127.0.0.1:${port}/metrics`, (s, b) => s === 200 && hasSdkMetrics(b), proc);
    expect(body).toMatch(/^terrapin_worker_polling 1$/m);
    expect(body).toMatch(/^# TYPE terrapin_webhooks_total counter$/m);
    expect(body).toMatch(/^# TYPE terrapin_runs_total counter$/m);
    // The dashboard's SDK panels query families this scrape has.
    const dashboard = readFileSync(new URL('../../deploy/grafana/terrapin.json', import.meta.url), 'utf8');
    const queried = new Set([...dashboard.matchAll(/\b(temporal_[a-z_]+)/g)].map((m) => m[1].replace(/_(bucket|count|sum)$/, '')));
    expect(queried.size).toBeGreaterThanOrEqual(3);
    const families = new Set([...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    expect([...queried].filter((name) => !families.has(name))).toEqual([]);
  });

  it('`npm run worker`: /metrics, /healthz, /readyz on TERRAPIN_METRICS_PORT, SDK metrics included', async () => {
    const env: TestWorkflowEnvironment = await startTemporal();
    stops.push(() => env.teardown());
    const metricsPort = await freePort();
    const proc = start('worker', { TEMPORAL_ADDRESS: env.address, TERRAPIN_METRICS_PORT: String(metricsPort) });
    expect(await until(`http://127.0.0.1:${metricsPort}/readyz`, (s) => s === 200, proc)).toBe('ready\n');
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
    const body = await until(`http://127.0.0.1:${metricsPort}/metrics`, (s, b) => s === 200 && hasSdkMetrics(b), proc);
    expect(body).toMatch(/^terrapin_worker_polling 1$/m);
    expect(body).toMatch(/^# TYPE terrapin_activities_total counter$/m);
  });
});
