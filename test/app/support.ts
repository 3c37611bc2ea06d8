// Shared test plumbing: a real Temporal dev server, a Probot instance with a throwaway key, and history readers.
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import type nockType from 'nock';
import { Probot } from 'probot';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createApp } from '../../app/index.ts';
import { createLogger } from '../../app/logger.ts';
import { startTestServer } from '../helpers/temporal-cli.ts';
import type { PrEvent, PrWorkflowInput } from '../../shared/contracts.ts';

export const TASK_QUEUE = 'terrapin-test';
export const WEBHOOK_SECRET = 'test-webhook-secret';
export const silentLogger = createLogger('silent');

export function privateKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
}

export function startTemporal(): Promise<TestWorkflowEnvironment> {
  return startTestServer();
}

/** A Probot with the Terrapin app loaded, for probot.receive(...). */
export async function testProbot(client: Client, opts: { repoAllowlist?: string[] } = {}): Promise<Probot> {
  const probot = new Probot({ appId: '12345', privateKey: privateKeyPem(), secret: WEBHOOK_SECRET, log: silentLogger });
  await probot.load(createApp({ client, taskQueue: TASK_QUEUE, logger: silentLogger, ...opts }));
  return probot;
}

export const deliveryId = (): string => randomUUID();

/** GitHub's X-Hub-Signature-256, computed independently of the code under test. */
export const sign = (body: string, secret = WEBHOOK_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** A webhook POST as GitHub sends it: X-GitHub-Delivery, X-GitHub-Event and the signature of the body. */
export async function post(
  port: number,
  event: string,
  payload: object,
  opts: { id?: string; signature?: string | null; path?: string } = {},
): Promise<Response> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': opts.id ?? deliveryId(),
  };
  const signature = opts.signature === undefined ? sign(body) : opts.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  return fetch(`http://127.0.0.1:${port}${opts.path ?? '/api/github/webhooks'}`, { method: 'POST', headers, body });
}

export async function receive(probot: Probot, name: string, payload: object, id = deliveryId()): Promise<string> {
  await probot.receive({ id, name, payload } as Parameters<Probot['receive']>[0]);
  return id;
}

export interface WorkflowRecord {
  workflowType: string;
  taskQueue: string;
  input: PrWorkflowInput;
  signals: { name: string; event: PrEvent }[];
}

/** What signalWithStart left in the workflow's history (no worker runs, so that is all there is). */
export async function workflowRecord(client: Client, workflowId: string): Promise<WorkflowRecord> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  if (!started) throw new Error(`${workflowId}: first event is not WorkflowExecutionStarted`);
  const decode = (p: unknown) => defaultPayloadConverter.fromPayload(p as Payload);
  const startInputs = (started.input?.payloads ?? []).map(decode);
  return {
    workflowType: started.workflowType?.name ?? '',
    taskQueue: started.taskQueue?.name ?? '',
    input: startInputs[0] as PrWorkflowInput,
    signals: events
      .map((e) => e.workflowExecutionSignaledEventAttributes)
      .filter((a) => a != null)
      .map((a) => {
        const args = (a.input?.payloads ?? []).map(decode);
        if (args.length !== 1) throw new Error(`signal ${a.signalName} has ${args.length} args`);
        return { name: a.signalName ?? '', event: args[0] as PrEvent };
      }),
  };
}

export async function workflowExists(client: Client, workflowId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

let nextPr = 1000 + Math.floor(Math.random() * 1000) * 100;
/** A PR number no other test in this file uses. */
export const freshPrNumber = (): number => nextPr++;

/**
 * Fails the current file's tests if anything but loopback is contacted (GitHub above all): the webhook path
 * must make no GitHub API call at all. Call it after the beforeAll that starts Temporal: nock intercepts at
 * the socket level from the moment it is imported, and the dev server's startup probe (connection refused
 * until the server listens) then never completes.
 */
export function forbidNetworkExceptLoopback(): { unexpected: string[]; nock: () => typeof nockType } {
  let nock: typeof nockType | undefined;
  const unexpected: string[] = [];
  // nock reports every request it has no mock for, including the loopback ones it lets through.
  const onNoMatch = (req: { method?: string; href?: string; url?: string; hostname?: string; path?: string }) => {
    const url = req.href ?? req.url ?? `http://${req.hostname}${req.path ?? ''}`;
    if (new URL(url).hostname !== '127.0.0.1') unexpected.push(`${req.method ?? '?'} ${url}`);
  };
  beforeAll(async () => {
    nock = (await import('nock')).default;
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    nock.emitter.on('no match', onNoMatch);
  });
  afterEach(() => {
    expect(unexpected).toEqual([]);
    expect(nock?.pendingMocks()).toEqual([]);
  });
  afterAll(() => {
    nock?.emitter.off('no match', onNoMatch);
    nock?.cleanAll();
    nock?.enableNetConnect();
  });
  return {
    unexpected,
    nock: () => {
      if (!nock) throw new Error('nock is loaded in beforeAll');
      return nock;
    },
  };
}

/**
 * The set-up every webhook test file shares: a real Temporal dev server, a Probot with the app loaded,
 * and no network but loopback. Read `client` and `probot` inside tests (they exist after beforeAll).
 */
export function webhookTestBed(): { readonly env: TestWorkflowEnvironment; readonly client: Client; readonly probot: Probot } {
  const bed = {} as { env: TestWorkflowEnvironment; client: Client; probot: Probot };
  beforeAll(async () => {
    bed.env = await startTemporal();
    bed.client = bed.env.client;
    bed.probot = await testProbot(bed.client);
  });
  afterAll(async () => {
    await bed.env?.teardown();
  });
  forbidNetworkExceptLoopback();
  return bed;
}
