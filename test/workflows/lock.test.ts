// Project locks on a real Temporal server: first come first served, refusals name the holder and wait in
// line (once per requester, in order), release hands the lock to the next in line with a notice, a holder
// that stops running or stays idle past the TTL loses the lock, and neither a worker restart nor
// continue-as-new changes anything.
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
import { answersQuery, noticesQuery, requestSignal, type RequestKind } from './fixtures/lock-requester.ts';
import { startTestServer } from '../helpers/temporal-cli.ts';
import { LOCK_QUEUE_LIMIT, lockActivityQuery, lockHolderQuery, lockQueueQuery, lockWorkflowId, type LockAnswer, type LockNotice } from '../../shared/contracts.ts';

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
  // The server suggests continue-as-new after 40 history events: long-lived locks carry their line over.
  env = await startTestServer({ extraArgs: ['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=40'] });
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

async function requester(repo: string, pr: number, holderCheckInterval?: string, ttl?: string) {
  return env.client.workflow.start('lockRequester', { workflowId: `pr:acme/${repo}#${pr}`, taskQueue, args: [{ pr, holderCheckInterval, ttl }] });
}

/** Sends a request and waits for its answer (the n-th answer of that requester). */
async function ask(handle: WorkflowHandle, kind: Exclude<RequestKind, 'touch'>, lockId: string): Promise<LockAnswer> {
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
const lineOf = async (lockId: string) => (await env.client.workflow.getHandle(lockId).query(lockQueueQuery)).map((w) => w.pr);

/** The requester's notices once it has `count` of them (they arrive unasked). */
async function notices(handle: WorkflowHandle, count: number, timeoutMs = 20_000): Promise<LockNotice[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await handle.query(noticesQuery);
    if (got.length >= count || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

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

  test('refused requesters wait in line once each, in order; leaving keeps the others\' order; release hands over with a notice', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'app', 'default');
    const [a, b, c, d] = await Promise.all([21, 22, 23, 24].map((n) => requester(repo, n, '1 second')));
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: true });
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: false, holder: { pr: 21 }, place: 1 });
    expect(await ask(c, 'acquire', lockId)).toMatchObject({ granted: false, place: 2 });
    expect(await ask(d, 'acquire', lockId)).toMatchObject({ granted: false, place: 3 });
    // Asking again keeps the place; an ask that does not wait takes none.
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: false, place: 1 });
    expect(await lineOf(lockId)).toEqual([22, 23, 24]);

    // c leaves the line (its PR closed): d moves up behind b.
    expect(await ask(c, 'release', lockId)).toMatchObject({ granted: false, holder: { pr: 21 } });
    expect(await lineOf(lockId)).toEqual([22, 24]);

    expect(await ask(a, 'release', lockId)).toMatchObject({ granted: true });
    const [granted] = await notices(b, 1);
    expect(granted).toMatchObject({ lockId, kind: 'granted', reason: 'released', previous: { pr: 21 } });
    expect(await holderOf(lockId)).toMatchObject({ pr: 22 });
    expect(await lineOf(lockId)).toEqual([24]);
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: true });
    expect(await notices(a, 0)).toEqual([]);
    expect(await notices(c, 0)).toEqual([]);

    // The holder's workflow ends without releasing: the next in line gets the lock at the next check.
    await b.terminate('simulating a PR workflow that died holding a lock');
    expect((await notices(d, 1))[0]).toMatchObject({ kind: 'granted', reason: 'holder-gone', previous: { pr: 22 } });
    expect(await holderOf(lockId)).toMatchObject({ pr: 24 });
    expect(await lineOf(lockId)).toEqual([]);
  });

  test('an ask that does not wait is refused without a place; the line is bounded', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'bounded', 'default');
    const holder = await requester(repo, 30);
    expect(await ask(holder, 'acquire', lockId)).toMatchObject({ granted: true });
    const applier = await requester(repo, 31);
    const refused = await ask(applier, 'acquire-no-wait', lockId);
    expect(refused).toMatchObject({ granted: false, holder: { pr: 30 } });
    expect(refused.place).toBeUndefined();
    expect(await lineOf(lockId)).toEqual([]);

    const waiters = await Promise.all(Array.from({ length: LOCK_QUEUE_LIMIT + 1 }, (_, i) => requester(repo, 100 + i)));
    for (const [i, w] of waiters.entries()) {
      const answer = await ask(w, 'acquire', lockId);
      expect(answer.granted).toBe(false);
      expect(answer.place).toBe(i < LOCK_QUEUE_LIMIT ? i + 1 : undefined);
    }
    expect(await lineOf(lockId)).toEqual(Array.from({ length: LOCK_QUEUE_LIMIT }, (_, i) => 100 + i));
  });

  test('a holder idle past the TTL loses the lock: it is told, and the next in line gets it', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'ttl', 'default');
    // The TTL requests carry is "12h"; the test knob makes it 1.5 seconds.
    await env.client.workflow.start('lockWorkflow', { workflowId: lockId, taskQueue, args: [{ ttlOverrideMs: 1500 }] });
    const a = await requester(repo, 40, undefined, '12h');
    const b = await requester(repo, 41, undefined, '12h');
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: true });
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: false, place: 1 });
    const [expired] = await notices(a, 1);
    expect(expired).toMatchObject({ lockId, kind: 'expired', ttl: '12h' });
    expect((await notices(b, 1))[0]).toMatchObject({ kind: 'granted', reason: 'expired', ttl: '12h', previous: { pr: 40 } });
    expect(await holderOf(lockId)).toMatchObject({ pr: 41 });
    // a asks again: it waits behind b.
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: false, holder: { pr: 41 }, place: 1 });
  });

  test('the holder, its line and their order survive continue-as-new', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'long', 'default');
    const [a, b, c] = await Promise.all([50, 51, 52].map((n) => requester(repo, n)));
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: true });
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ place: 1 });
    expect(await ask(c, 'acquire', lockId)).toMatchObject({ place: 2 });
    const lock = env.client.workflow.getHandle(lockId);
    const firstRun = (await lock.describe()).runId;
    // Requests grow the history past the threshold: the lock continues as new between them.
    for (let i = 0; i < 12 && (await lock.describe()).runId === firstRun; i++) expect(await ask(c, 'acquire', lockId)).toMatchObject({ place: 2 });
    expect((await lock.describe()).runId).not.toBe(firstRun);
    expect(await holderOf(lockId)).toMatchObject({ pr: 50 });
    expect(await lineOf(lockId)).toEqual([51, 52]);
    expect(await ask(a, 'release', lockId)).toMatchObject({ granted: true });
    expect((await notices(b, 1))[0]).toMatchObject({ kind: 'granted', previous: { pr: 50 } });
    expect(await lineOf(lockId)).toEqual([52]);
  });

  test('a touch from the holder renews its activity; one from anyone else changes nothing', async () => {
    const repo = ownRepo();
    const lockId = lockWorkflowId('acme', repo, 'touched', 'default');
    const a = await requester(repo, 60, undefined, '12h');
    const b = await requester(repo, 61, undefined, '12h');
    expect(await ask(a, 'acquire', lockId)).toMatchObject({ granted: true });
    const activity = () => env.client.workflow.getHandle(lockId).query(lockActivityQuery);
    const granted = await activity();
    expect(granted.ttl).toBe('12h');

    // b's touch, then b's ask: once b has its answer, the lock has handled the touch before it.
    await b.signal(requestSignal, 'touch', lockId);
    expect(await ask(b, 'acquire', lockId)).toMatchObject({ granted: false, place: 1 });
    expect((await activity()).lastActivity).toBe(granted.lastActivity);

    await a.signal(requestSignal, 'touch', lockId);
    const deadline = Date.now() + 20_000;
    while ((await activity()).lastActivity === granted.lastActivity && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await activity()).lastActivity).toBeGreaterThan(granted.lastActivity);
  });
});
