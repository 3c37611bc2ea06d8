// Project locks on a real Temporal server: first come first served, refusals name the holder,
// release frees, a holder that stops running loses the lock, and a worker restart changes nothing.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities } from '../../activities/index.ts';
import { loadConfig } from '../../app/config.ts';
import { answersQuery, requestSignal } from './fixtures/lock-requester.ts';
import { startTestServer } from '../helpers/temporal-cli.ts';
import { lockHolderQuery, lockWorkflowId, type LockAnswer } from '../../shared/contracts.ts';

// This file's own queue and data dir: nothing shared with another file's server or worker.
const taskQueue = `locks-${randomUUID()}`;
let dataDir: string;
let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
let stopWorker: () => Promise<void>;

async function startWorker(): Promise<() => Promise<void>> {
  const config = loadConfig({ APP_ID: '1', PRIVATE_KEY: 'unused', WEBHOOK_SECRET: 'unused', TERRAPIN_DATA_DIR: dataDir });
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: createActivities({ config, logger: pino({ level: 'silent' }), temporal: env.client }),
  });
  const running = worker.run();
  return async () => {
    worker.shutdown();
    await running;
  };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'terrapin-lock-'));
  env = await startTestServer();
  bundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./fixtures/lock-requester.ts', import.meta.url)) });
  stopWorker = await startWorker();
});
afterAll(async () => {
  await stopWorker?.();
  await env?.teardown();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Each test's locks and requesters belong to a repository of its own: no test sees another's. */
const ownRepo = () => `locks-${randomUUID().slice(0, 8)}`;

async function requester(repo: string, pr: number, holderCheckInterval?: string) {
  return env.client.workflow.start('lockRequester', { workflowId: `pr:acme/${repo}#${pr}`, taskQueue, args: [{ pr, holderCheckInterval }] });
}

/** Sends a request and waits for its answer (the n-th answer of that requester). */
async function ask(handle: WorkflowHandle, kind: 'acquire' | 'release', lockId: string): Promise<LockAnswer> {
  const before = (await handle.query(answersQuery)).length;
  await handle.signal(requestSignal, kind, lockId);
  for (let i = 0; i < 200; i++) {
    const answers = await handle.query(answersQuery);
    if (answers.length > before) return answers[before]!;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no answer to ${kind} ${lockId}`);
}

const holderOf = (lockId: string) => env.client.workflow.getHandle(lockId).query(lockHolderQuery);

describe('project locks', () => {
  test('first come first served; refusal names the holder; release frees; a free lock workflow finishes', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'infra/network', 'default');
    const a = await requester(repo, 1);
    const b = await requester(repo, 2);

    expect(await ask(a, 'acquire', lockId)).toMatchObject({ lockId, granted: true, holder: { pr: 1, workflowId: a.workflowId } });
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: false, holder: { pr: 1 } });
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: true, holder: { pr: 1 } });
    expect(await ask(b, 'release', lockId)).toMatchObject({ granted: false, holder: { pr: 1 } });

    const released = await ask(a, 'release', lockId);
    expect(released.granted).toBe(true);
    expect(released.holder).toBeUndefined();
    await env.client.workflow.getHandle(lockId).result();
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: true, holder: { pr: 2 } });
    // Different workspace, different lock.
    expect(await ask(a, 'acquire', lockWorkflowId('acme', repo, 'infra/network', 'prod'))).toMatchObject({ granted: true });
  });

  test('a holder that stopped running without releasing loses the lock at the next check', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'app', 'default');
    const a = await requester(repo, 3, '1 second');
    const b = await requester(repo, 4, '1 second');
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: true });
    await a.terminate('simulating a PR workflow that died holding a lock');
    for (let i = 0; i < 100 && (await holderOf(lockId).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: true, holder: { pr: 4 } });
  });

  test('a held lock survives a worker restart', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'db', 'default');
    const a = await requester(repo, 5);
    const b = await requester(repo, 6);
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: true });
    await stopWorker();
    stopWorker = await startWorker();
    expect(await holderOf(lockId)).toMatchObject({ pr: 5 });
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: false, holder: { pr: 5 } });
    expect(await ask(a, 'release', lockId)).toMatchObject({ granted: true });
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: true, holder: { pr: 6 } });
  });
});
