// Encrypted history end to end: with TERRAPIN_PAYLOAD_KEY, a real PR flow (webhook → workflow → plan run → GitHub)
// leaves nothing readable in Temporal. The histories are fetched raw over gRPC (no codec) and searched byte by
// byte for a marker that the PR's inputs, the plan's results and a plan failure's messages all contain.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { AesGcmPayloadCodec, ENCODING, parsePayloadKeys, payloadDataConverter } from '../../app/codec.ts';
import { CHECK_APPLY, CHECK_PLAN, PR_WORKFLOW_TYPE, prStateQuery, prWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import pino from 'pino';
import { connectTemporal } from '../../app/temporal.ts';
import { createWorker } from '../../app/worker.ts';
import { connectOperator } from '../../operator/connect.ts';

const OWNER = 'acme';
const MARKER = `zebra${randomBytes(6).toString('hex')}`;
const KEY = `k1:${randomBytes(32).toString('base64')}`;

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness({ dataConverter: payloadDataConverter({ TERRAPIN_PAYLOAD_KEY: KEY }) });
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-codec-test-'));
  h.allowRunnerPath(tmp);
});

afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function openPr(name: string, number: number, files: Record<string, string>): Promise<{ pr: TestPr; gh: GithubMock }> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }) });
  repos.push(repo);
  const headRef = `feature-${MARKER}`;
  const headSha = await repo.commit(files, { branch: headRef });
  const pr: TestPr = { owner: OWNER, repo: name, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef, baseRef: 'main', baseSha: await repo.head('main'), author: 'alice' };
  return { pr, gh: new GithubMock(OWNER, name) };
}

/** The raw history of a workflow and of every child it started, as the server stores them. */
async function rawHistories(workflowId: string, seen = new Set<string>()): Promise<unknown[]> {
  if (seen.has(workflowId)) return [];
  seen.add(workflowId);
  const response = await h.env.client.workflowService.getWorkflowExecutionHistory({ namespace: 'default', execution: { workflowId } });
  const events = response.history?.events ?? [];
  const out: unknown[] = [response.history];
  for (const e of events) {
    const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
    if (child) out.push(...(await rawHistories(child, seen)));
  }
  return out;
}

/** Every byte array and string anywhere in a (protobuf) object. */
function* leaves(value: unknown): Generator<Uint8Array | string> {
  if (value instanceof Uint8Array || typeof value === 'string') yield value;
  else if (value && typeof value === 'object') for (const v of Object.values(value)) yield* leaves(v);
}

function* payloads(value: unknown, path = ''): Generator<[string, Payload]> {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return;
  const p = value as Payload;
  if (p.metadata && p.data instanceof Uint8Array) yield [path, p];
  else for (const [k, v] of Object.entries(value)) yield* payloads(v, `${path}.${k}`);
}

function* failures(value: unknown): Generator<{ message?: string; encodedAttributes?: Payload | null }> {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return;
  for (const [k, v] of Object.entries(value)) {
    if (k === 'failure' && v && typeof v === 'object') yield v as { message?: string };
    yield* failures(v);
  }
}

async function rawHistoryBytesContain(workflowId: string): Promise<{ markerFound: boolean; failures: Array<{ message?: string; encodedAttributes?: Payload | null }> }> {
  const [history] = await rawHistories(workflowId);
  return { markerFound: [...leaves(history)].some(containsMarker), failures: [...failures(history)] };
}

const containsMarker = (leaf: Uint8Array | string) => Buffer.from(leaf as Uint8Array).includes(MARKER) || (typeof leaf === 'string' && leaf.includes(MARKER));

describe('encrypted history', () => {
  test('a PR plan and a failed plan leave no plaintext in Temporal; with the key the histories decode', async () => {
    const ok = await openPr('secretplan', 1, { 'main.tf': terraformFixture({ stateFile: join(tmp, 'secretplan.tfstate'), resources: { a: { input: 'base' }, b: { input: MARKER } } }) });
    ok.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(1, (b) => b.includes('**Terrapin plan**') && b.includes(MARKER))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: /^Plan: 2 to add/ })
      .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
    await h.receive('pull_request', pullRequestEvent('opened', ok.pr));
    await ok.gh.settled(60_000);
    await h.waitFor(OWNER, 'secretplan', 1, (s) => s.plan?.status === 'ready');

    // A plan whose error output names the marker (a reference to an undeclared variable): a failure path.
    const bad = await openPr('secretfail', 2, { [`${MARKER}.tf`]: `resource "terraform_data" "x" {\n  input = var.${MARKER}\n}\n` });
    bad.gh
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(2, (b) => /plan failed/i.test(b) && b.includes(MARKER))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
    await h.receive('pull_request', pullRequestEvent('opened', bad.pr));
    await bad.gh.settled(60_000);
    await h.waitFor(OWNER, 'secretfail', 2, (s) => !s.job && s.queued === 0);
    ok.gh.assertNoUnexpected();
    bad.gh.assertNoUnexpected();

    const histories = [...(await rawHistories(prWorkflowId(OWNER, 'secretplan', 1))), ...(await rawHistories(prWorkflowId(OWNER, 'secretfail', 2)))];
    expect(histories.length).toBeGreaterThanOrEqual(4); // two PR workflows and at least one run each
    const readable = histories.flatMap((history) => [...leaves(history)].filter(containsMarker));
    expect(readable).toEqual([]);

    // Every payload is encrypted, and with the key the marker is there: the search above could have found it.
    const found = histories.flatMap((history) => [...payloads(history)]);
    const all = found.map(([, p]) => p);
    expect(all.length).toBeGreaterThan(10);
    // Left plaintext by Temporal itself, by design: search attributes (visibility must read them) and the
    // SDK's bookkeeping of local activities (type, attempt, times: the marker's `data`; its result is encrypted).
    const plain = found
      .filter(([, p]) => Buffer.from(p.metadata!.encoding ?? new Uint8Array()).toString() !== ENCODING)
      .map(([path]) => path.replace(/^\.events\.\d+\./, ''))
      .filter((path) => !/^upsertWorkflowSearchAttributesEventAttributes\.searchAttributes\.indexedFields\.Terrapin\w+$/.test(path))
      .filter((path) => path !== 'markerRecordedEventAttributes.details.data.payloads.0');
    expect(plain).toEqual([]);
    const decoded = await new AesGcmPayloadCodec(parsePayloadKeys(KEY)!).decode(all);
    const withMarker = decoded.filter((p) => Buffer.from(p.data!).includes(MARKER));
    expect(withMarker.length).toBeGreaterThanOrEqual(2);

    // A key that is not the one used: reading the PR's state fails, naming the key id, never showing data.
    const { Client } = await import('@temporalio/client');
    const wrong = new Client({ connection: h.env.client.connection, namespace: 'default', dataConverter: payloadDataConverter({ TERRAPIN_PAYLOAD_KEY: `k1:${randomBytes(32).toString('base64')}` }) });
    const handle = wrong.workflow.getHandle(prWorkflowId(OWNER, 'secretplan', 1));
    await expect(handle.query('prState')).rejects.toThrow(/key id "k1" does not decrypt/);
  });

  test('failure messages and stack traces are encrypted too, and decode with the key', async () => {
    const taskQueue = `codec-failures-${randomBytes(4).toString('hex')}`;
    const worker = await Worker.create({
      connection: h.env.nativeConnection,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('./codec-failing-workflow.ts', import.meta.url)),
      activities: { failWith: async (message: string) => { throw ApplicationFailure.nonRetryable(message, 'MarkedFailure'); } },
      dataConverter: payloadDataConverter({ TERRAPIN_PAYLOAD_KEY: KEY }),
    });
    const workflowId = `codec-failure-${randomBytes(4).toString('hex')}`;
    const outcome = await worker.runUntil(
      h.env.client.workflow.execute('failingWorkflow', { taskQueue, workflowId, args: [`activity failed: ${MARKER}`] }).then(
        () => undefined,
        (err: unknown) => err,
      ),
    );
    // Through the codec the failure reads as thrown.
    expect(outcome).toBeInstanceOf(WorkflowFailedError);
    expect(((outcome as WorkflowFailedError).cause?.cause as Error | undefined)?.message).toContain(MARKER);
    // Raw: the messages are a placeholder, the real ones are in encrypted attributes.
    const raw = await rawHistoryBytesContain(workflowId);
    expect(raw.markerFound).toBe(false);
    expect(raw.failures.length).toBeGreaterThanOrEqual(2); // the activity's and the workflow's
    for (const f of raw.failures) {
      expect(f.message).toBe('Encoded failure');
      expect(Buffer.from(f.encodedAttributes!.metadata!.encoding!).toString()).toBe(ENCODING);
    }
  });

  test('the app (server and worker connections) and the operator (CLI, MCP) take TERRAPIN_PAYLOAD_KEY from the environment', async () => {
    const env = { TEMPORAL_ADDRESS: h.env.address, TERRAPIN_PAYLOAD_KEY: KEY };
    const taskQueue = `codec-wiring-${randomBytes(4).toString('hex')}`;
    const logger = pino({ level: 'silent' });
    const app = await connectTemporal({ address: h.env.address, namespace: 'default', taskQueue }, { dataDir: tmp, logger, env });
    const operator = await connectOperator(env);
    const keyless = await connectOperator({ TEMPORAL_ADDRESS: h.env.address });
    try {
      // As runTerrapinWorker does: the worker's converter is the app client's.
      const worker = await createWorker({ nativeConnection: app.nativeConnection, namespace: 'default', taskQueue, activities: {}, logger, dataConverter: app.client.options.dataConverter });
      await worker.runUntil(async () => {
        const workflowId = prWorkflowId(OWNER, 'wiring', 9);
        const headSha = 'a'.repeat(40);
        const snapshot = { headSha, headRef: `feature-${MARKER}`, baseRef: 'main', baseSha: 'b'.repeat(40), author: 'alice', draft: false, headCloneUrl: 'file:///nowhere', state: 'open' as const, labels: [] };
        await app.client.workflow.start(PR_WORKFLOW_TYPE, { taskQueue, workflowId, args: [{ pr: { repo: { owner: OWNER, name: 'wiring' }, number: 9 }, snapshot }], memo: { note: MARKER } });
        // The worker decoded the encrypted input (the query answers with its head SHA); the operator reads it too.
        expect((await operator.client.workflow.getHandle(workflowId).query(prStateQuery)).headSha).toBe(headSha);
        expect((await operator.client.workflow.getHandle(workflowId).describe()).memo).toEqual({ note: MARKER });
        // Without the key the CLI cannot read it, and says why.
        await expect(keyless.client.workflow.getHandle(workflowId).describe()).rejects.toThrow(/Unknown encoding: binary\/encrypted/);
        expect((await rawHistoryBytesContain(workflowId)).markerFound).toBe(false);
        await app.client.workflow.getHandle(workflowId).terminate('test done');
      });
    } finally {
      await Promise.all([app.close(), operator.close(), keyless.close()]);
    }
  });
});
