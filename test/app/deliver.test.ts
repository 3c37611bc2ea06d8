import { execFileSync } from 'node:child_process';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecentIds, createDeliverer, type Delivery } from '../../app/deliver.ts';
import { PR_EVENT_SIGNAL, prWorkflowId } from '../../shared/contracts.ts';
import { temporalCliPath } from '../helpers/temporal-cli.ts';
import { TASK_QUEUE, deliveryId, freshPrNumber, silentLogger, startTemporal, workflowExists, workflowRecord } from './support.ts';

let env: TestWorkflowEnvironment;
let client: Client;

beforeAll(async () => {
  env = await startTemporal();
  client = env.client;
});
afterAll(async () => {
  await env?.teardown();
});

function helpDelivery(owner = 'acme', name = 'infra', id = deliveryId()): Delivery {
  const number = freshPrNumber();
  return {
    pr: { repo: { owner, name, installationId: 7, cloneUrl: `https://github.com/${owner}/${name}.git` }, number },
    event: { type: 'command', deliveryId: id, source: 'comment', actor: 'octocat', commentId: 1, command: { name: 'help', extraArgs: [] } },
  };
}
const idOf = (d: Delivery) => prWorkflowId(d.pr.repo.owner, d.pr.repo.name, d.pr.number);

describe('RecentIds', () => {
  it('forgets the least recently seen id beyond its capacity', () => {
    const ids = new RecentIds(2);
    ids.add('a');
    ids.add('b');
    expect(ids.has('a')).toBe(true); // refreshes a, so b is now the oldest
    ids.add('c');
    expect([ids.has('a'), ids.has('b'), ids.has('c'), ids.size]).toEqual([true, false, true, 2]);
  });
});

describe('createDeliverer', () => {
  it('signals once per delivery id, also for a redelivery to this instance', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger });
    const delivery = helpDelivery();
    expect(await deliver(delivery)).toBe('signalled');
    expect(await deliver(structuredClone(delivery))).toBe('duplicate');
    const { signals } = await workflowRecord(client, idOf(delivery));
    expect(signals).toEqual([{ name: PR_EVENT_SIGNAL, event: delivery.event }]);
  });

  it('signals once when the same delivery arrives twice at the same time', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger });
    const delivery = helpDelivery();
    const outcomes = await Promise.all([deliver(delivery), deliver(structuredClone(delivery))]);
    expect(outcomes.sort()).toEqual(['duplicate', 'signalled']);
    expect((await workflowRecord(client, idOf(delivery))).signals).toHaveLength(1);
  });

  it('forgets deliveries beyond its memory (the workflow dedupes those durably)', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger, recentDeliveries: 1 });
    const first = helpDelivery();
    expect(await deliver(first)).toBe('signalled');
    expect(await deliver(helpDelivery())).toBe('signalled');
    expect(await deliver(first)).toBe('signalled');
    expect((await workflowRecord(client, idOf(first))).signals).toHaveLength(2);
  });

  it('does not remember a delivery it failed to signal, so a redelivery goes through', async () => {
    // A real Temporal error: the namespace does not exist until the test registers it.
    const namespace = `late-${freshPrNumber()}`;
    const lateClient = new Client({ connection: client.connection, namespace });
    const deliver = createDeliverer({ client: lateClient, taskQueue: TASK_QUEUE, logger: silentLogger });
    const delivery = helpDelivery();
    await expect(deliver(delivery)).rejects.toThrow(/namespace/i);

    const cli = temporalCliPath();
    if (!cli) throw new Error('the temporal CLI is needed to register a namespace');
    execFileSync(cli, ['operator', 'namespace', 'create', '--namespace', namespace, '--retention', '1d', '--address', env.address]);
    let outcome: string | undefined;
    for (let attempt = 0; attempt < 100 && outcome === undefined; attempt++) {
      // Until the server's namespace cache catches up every attempt fails; none may count as delivered.
      outcome = await deliver(delivery).catch(() => new Promise<undefined>((r) => setTimeout(r, 200)));
    }
    expect(outcome).toBe('signalled');
    expect(await deliver(delivery)).toBe('duplicate');
    const { signals } = await workflowRecord(lateClient, idOf(delivery));
    expect(signals.map((s) => s.event.deliveryId)).toEqual([delivery.event.deliveryId]);
  });

  it('honours the repository allowlist (owner/* and owner/repo globs, case-insensitive)', async () => {
    const deliver = createDeliverer({
      client,
      taskQueue: TASK_QUEUE,
      logger: silentLogger,
      repoAllowlist: ['Acme/*', 'octo-org/terraform'],
    });
    const allowed = [helpDelivery('acme', 'infra'), helpDelivery('ACME', 'network'), helpDelivery('octo-org', 'Terraform')];
    const denied = [helpDelivery('octo-org', 'website'), helpDelivery('acme-evil', 'infra'), helpDelivery('other', 'acme')];
    expect(await Promise.all(allowed.map(deliver))).toEqual(['signalled', 'signalled', 'signalled']);
    expect(await Promise.all(denied.map(deliver))).toEqual(['not-allowed', 'not-allowed', 'not-allowed']);
    for (const d of allowed) expect(await workflowExists(client, idOf(d))).toBe(true);
    for (const d of denied) expect(await workflowExists(client, idOf(d))).toBe(false);
  });
});
