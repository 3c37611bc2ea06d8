import { execFileSync } from 'node:child_process';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { RecentIds, createDeliverer, type Deliverer, type Delivery } from '../../app/deliver.ts';
import {
  DEPLOY_SIGNAL,
  DEPLOY_WORKFLOW_TYPE,
  DRIFT_RECONCILE_WORKFLOW_TYPE,
  PR_EVENT_SIGNAL,
  PUSH_WORKFLOW_TYPE,
  RECONCILE_SIGNAL,
  deployWorkflowId,
  driftReconcileId,
  prWorkflowId,
  pushWorkflowId,
  type RepoRef,
} from '../../shared/contracts.ts';
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
    expect(await deliver.pr(delivery)).toBe('signalled');
    expect(await deliver.pr(structuredClone(delivery))).toBe('duplicate');
    const { signals } = await workflowRecord(client, idOf(delivery));
    expect(signals).toEqual([{ name: PR_EVENT_SIGNAL, event: delivery.event }]);
  });

  it('signals once when the same delivery arrives twice at the same time', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger });
    const delivery = helpDelivery();
    const outcomes = await Promise.all([deliver.pr(delivery), deliver.pr(structuredClone(delivery))]);
    expect(outcomes.sort()).toEqual(['duplicate', 'signalled']);
    expect((await workflowRecord(client, idOf(delivery))).signals).toHaveLength(1);
  });

  it('forgets deliveries beyond its memory (the workflow dedupes those durably)', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger, recentDeliveries: 1 });
    const first = helpDelivery();
    expect(await deliver.pr(first)).toBe('signalled');
    expect(await deliver.pr(helpDelivery())).toBe('signalled');
    expect(await deliver.pr(first)).toBe('signalled');
    expect((await workflowRecord(client, idOf(first))).signals).toHaveLength(2);
  });

  it('does not remember a delivery it failed to signal, so a redelivery goes through', async () => {
    // A real Temporal error: the namespace does not exist until the test registers it.
    const namespace = `late-${freshPrNumber()}`;
    const lateClient = new Client({ connection: client.connection, namespace });
    const deliver = createDeliverer({ client: lateClient, taskQueue: TASK_QUEUE, logger: silentLogger });
    const delivery = helpDelivery();
    await expect(deliver.pr(delivery)).rejects.toThrow(/namespace/i);

    const cli = temporalCliPath();
    if (!cli) throw new Error('the temporal CLI is needed to register a namespace');
    execFileSync(cli, ['operator', 'namespace', 'create', '--namespace', namespace, '--retention', '1d', '--address', env.address]);
    let outcome: string | undefined;
    for (let attempt = 0; attempt < 100 && outcome === undefined; attempt++) {
      // Until the server's namespace cache catches up every attempt fails; none may count as delivered.
      outcome = await deliver.pr(delivery).catch(() => new Promise<undefined>((r) => setTimeout(r, 200)));
    }
    expect(outcome).toBe('signalled');
    expect(await deliver.pr(delivery)).toBe('duplicate');
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
    expect(await Promise.all(allowed.map((d) => deliver.pr(d)))).toEqual(['signalled', 'signalled', 'signalled']);
    expect(await Promise.all(denied.map((d) => deliver.pr(d)))).toEqual(['not-allowed', 'not-allowed', 'not-allowed']);
    for (const d of allowed) expect(await workflowExists(client, idOf(d))).toBe(true);
    for (const d of denied) expect(await workflowExists(client, idOf(d))).toBe(false);
  });
});

/** The other ways into Temporal: each a delivery of its own kind to its own (fresh) workflow. */
const otherKinds = {
  reconcile: () => {
    const project = `net${freshPrNumber()}`;
    return {
      workflowId: (repo: RepoRef) => driftReconcileId(repo, project),
      send: (d: Deliverer, repo: RepoRef, id: string) =>
        d.reconcile(repo, project, { type: 'approve', deliveryId: id, actor: 'octocat', commentId: 1, issueNumber: 5 }),
      expected: (repo: RepoRef, id: string) => ({
        workflowType: DRIFT_RECONCILE_WORKFLOW_TYPE,
        input: { repo, project },
        signals: [{ name: RECONCILE_SIGNAL, event: { type: 'approve', deliveryId: id, actor: 'octocat', commentId: 1, issueNumber: 5 } }],
      }),
    };
  },
  deploy: () => {
    const project = `web${freshPrNumber()}`;
    return {
      workflowId: (repo: RepoRef) => deployWorkflowId(repo, project),
      send: (d: Deliverer, repo: RepoRef, id: string) => d.deploy(repo, project, { type: 'approve', deliveryId: id, actor: 'octocat', sha: 'a'.repeat(40) }),
      expected: (repo: RepoRef, id: string) => ({
        workflowType: DEPLOY_WORKFLOW_TYPE,
        input: { repo, project },
        signals: [{ name: DEPLOY_SIGNAL, event: { type: 'approve', deliveryId: id, actor: 'octocat', sha: 'a'.repeat(40) } }],
      }),
    };
  },
  push: () => {
    const after = randomBytes(20).toString('hex');
    const input = (repo: RepoRef) => ({ repo, before: 'b'.repeat(40), after, actor: 'octocat' });
    return {
      workflowId: (repo: RepoRef) => pushWorkflowId(repo, after),
      send: (d: Deliverer, repo: RepoRef, id: string) => d.push(id, input(repo)),
      expected: (repo: RepoRef) => ({ workflowType: PUSH_WORKFLOW_TYPE, input: input(repo), signals: [] }),
    };
  },
};
const repoRef = (owner = 'acme', name = 'infra'): RepoRef => ({ owner, name, installationId: 7, cloneUrl: `https://github.com/${owner}/${name}.git` });

describe.each(Object.keys(otherKinds) as (keyof typeof otherKinds)[])('a %s delivery passes the same gate', (kind) => {
  it('reaches Temporal once per delivery id', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger });
    const target = otherKinds[kind]();
    const repo = repoRef();
    const id = deliveryId();
    const outcomes = [await target.send(deliver, repo, id), await target.send(deliver, structuredClone(repo), id)];
    expect(outcomes).toEqual([kind === 'push' ? 'started' : 'signalled', 'duplicate']);
    expect(await workflowRecord(client, target.workflowId(repo))).toMatchObject(target.expected(repo, id));
  });

  it('shares one attempt between concurrent redeliveries', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger });
    const target = otherKinds[kind]();
    const repo = repoRef();
    const id = deliveryId();
    const outcomes = await Promise.all([target.send(deliver, repo, id), target.send(deliver, repo, id)]);
    expect(outcomes.sort()).toEqual(['duplicate', kind === 'push' ? 'started' : 'signalled']);
    expect((await workflowRecord(client, target.workflowId(repo))).signals).toHaveLength(kind === 'push' ? 0 : 1);
  });

  it('reaches nothing for a repository outside the allowlist', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger, repoAllowlist: ['acme/*'] });
    const target = otherKinds[kind]();
    const outsider = repoRef('acme-evil', 'infra');
    expect(await target.send(deliver, outsider, deliveryId())).toBe('not-allowed');
    expect(await workflowExists(client, target.workflowId(outsider))).toBe(false);
  });

  it('throws when Temporal refuses (the endpoint answers 503), and does not count the delivery as done', async () => {
    const missing = new Client({ connection: client.connection, namespace: `missing-${freshPrNumber()}` });
    const deliver = createDeliverer({ client: missing, taskQueue: TASK_QUEUE, logger: silentLogger });
    const target = otherKinds[kind]();
    const id = deliveryId();
    await expect(target.send(deliver, repoRef(), id)).rejects.toThrow(/namespace/i);
    // Not 'duplicate': the redelivery is tried again.
    await expect(target.send(deliver, repoRef(), id)).rejects.toThrow(/namespace/i);
  });

  it('gives up at the deadline', async () => {
    const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger, signalTimeoutMs: 0 });
    const err = await otherKinds[kind]().send(deliver, repoRef(), deliveryId()).catch((e: unknown) => e);
    // The client's error wraps gRPC's: status 4 is DEADLINE_EXCEEDED.
    expect(err).toMatchObject({ cause: { code: 4 } });
  });
});

it('a push delivered again under a new id finds its workflow started', async () => {
  const deliver = createDeliverer({ client, taskQueue: TASK_QUEUE, logger: silentLogger });
  const target = otherKinds.push();
  expect(await target.send(deliver, repoRef(), deliveryId())).toBe('started');
  expect(await target.send(deliver, repoRef(), deliveryId())).toBe('duplicate');
});
