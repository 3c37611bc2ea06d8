// syncDriftSchedules against a real Temporal dev server: what describe() shows is what the server will run.
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { syncDriftSchedules, type SyncDriftSchedulesInput } from '../../activities/drift-schedules.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { startTestServer } from '../helpers/temporal-cli.ts';

let env: TestWorkflowEnvironment;
let client: Client;

// Each test its own owner, so its repositories' schedules are its own: none sees what another created.
let owner: string;
let repo: RepoRef;
// Its name starts like the other's: only the full `drift:<owner>/infra:` prefix keeps them apart.
let otherRepo: RepoRef;
beforeEach(() => {
  owner = `acme-${randomUUID().slice(0, 8)}`;
  repo = { owner, name: 'infra', installationId: 7, cloneUrl: `https://github.com/${owner}/infra.git` };
  otherRepo = { owner, name: 'infra-edge', installationId: 7, cloneUrl: `https://github.com/${owner}/infra-edge.git` };
});
const id = (r: RepoRef, project: string) => `drift:${r.owner}/${r.name}:${project}`;

beforeAll(async () => {
  env = await startTestServer();
  client = env.client;
});
afterAll(async () => {
  await env?.teardown();
});

const sync = (r: RepoRef, projects: SyncDriftSchedulesInput['projects']) =>
  syncDriftSchedules({ repo: r, projects, taskQueue: 'terrapin', workflowType: 'driftWorkflow' }, { client });

const drift = (schedule: string) => ({ schedule, reconcile: false });

/** The schedules the first test creates: where the others start from. */
async function createNetworkAndApp(): Promise<void> {
  expect(await sync(repo, [{ name: 'network', drift: drift('0 3 * * *') }, { name: 'app', drift: drift('*/30 * * * *') }])).toEqual({ created: ['network', 'app'], updated: [], deleted: [] });
}

/** Listing goes through the visibility store, which may lag a little behind create and update. */
async function waitUntilListed(ids: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const listed = new Set<string>();
    for await (const s of client.schedule.list()) listed.add(s.scheduleId);
    if (ids.every((id) => listed.has(id))) return;
    if (Date.now() > deadline) throw new Error(`not listed: ${ids.filter((id) => !listed.has(id)).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('syncDriftSchedules', () => {
  it('creates one schedule per project with drift, and describe() shows its cron and action', async () => {
    expect(await sync(otherRepo, [{ name: 'network', drift: drift('15 1 * * *') }])).toEqual({ created: ['network'], updated: [], deleted: [] });
    const result = await sync(repo, [
      { name: 'network', drift: drift('0 3 * * *') },
      { name: 'app', drift: { schedule: '*/30 * * * *', reconcile: true } },
      { name: 'docs' },
    ]);
    expect(result).toEqual({ created: ['network', 'app'], updated: [], deleted: [] });

    const described = await client.schedule.getHandle(id(repo, 'network')).describe();
    expect(described.spec.calendars).toEqual([
      expect.objectContaining({ minute: [{ start: 0, end: 0, step: 1 }], hour: [{ start: 3, end: 3, step: 1 }] }),
    ]);
    expect(described.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'driftWorkflow',
      taskQueue: 'terrapin',
      workflowId: `drift-run:${owner}/infra:network`,
      args: [{ repo, project: 'network' }],
      memo: { driftSchedule: '0 3 * * *' },
    });
    expect(described.policies.overlap).toBe('SKIP');
    await expect(client.schedule.getHandle(id(repo, 'docs')).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('changes nothing when nothing changed', async () => {
    await createNetworkAndApp();
    const result = await sync(repo, [
      { name: 'network', drift: drift('0 3 * * *') },
      { name: 'app', drift: drift('*/30 * * * *') },
    ]);
    // reconcile is read by the run from the default branch: it is not part of the schedule.
    expect(result).toEqual({ created: [], updated: [], deleted: [] });
  });

  it('updates a schedule whose cron or arguments changed', async () => {
    await createNetworkAndApp();
    const moved = { ...repo, installationId: 8 };
    const result = await sync(moved, [
      { name: 'network', drift: drift('0 4 * * 1') },
      { name: 'app', drift: drift('*/30 * * * *') },
    ]);
    expect(result).toEqual({ created: [], updated: ['network', 'app'], deleted: [] });
    const network = await client.schedule.getHandle(id(repo, 'network')).describe();
    expect(network.spec.calendars).toEqual([
      expect.objectContaining({ minute: [{ start: 0, end: 0, step: 1 }], hour: [{ start: 4, end: 4, step: 1 }], dayOfWeek: [{ start: 'MONDAY', end: 'MONDAY', step: 1 }] }),
    ]);
    expect(network.action).toMatchObject({ args: [{ repo: moved, project: 'network' }], memo: { driftSchedule: '0 4 * * 1' } });
    const app = await client.schedule.getHandle(id(repo, 'app')).describe();
    expect(app.action).toMatchObject({ args: [{ repo: moved, project: 'app' }], memo: { driftSchedule: '*/30 * * * *' } });
  });

  it('deletes the schedules of projects no longer configured, and only this repository’s', async () => {
    expect(await sync(otherRepo, [{ name: 'network', drift: drift('15 1 * * *') }])).toEqual({ created: ['network'], updated: [], deleted: [] });
    await createNetworkAndApp();
    const moved = { ...repo, installationId: 8 };
    expect(await sync(moved, [{ name: 'network', drift: drift('0 4 * * 1') }, { name: 'app', drift: drift('*/30 * * * *') }])).toEqual({ created: [], updated: ['network', 'app'], deleted: [] });
    await waitUntilListed([id(repo, 'network'), id(repo, 'app'), id(otherRepo, 'network')]);
    const result = await sync(moved, [{ name: 'network', drift: drift('0 4 * * 1') }, { name: 'app' }]);
    expect(result).toEqual({ created: [], updated: [], deleted: ['app'] });
    await expect(client.schedule.getHandle(id(repo, 'app')).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect((await client.schedule.getHandle(id(repo, 'network')).describe()).action).toMatchObject({ memo: { driftSchedule: '0 4 * * 1' } });
    const other = await client.schedule.getHandle(id(otherRepo, 'network')).describe();
    expect(other.action).toMatchObject({ args: [{ repo: otherRepo, project: 'network' }], memo: { driftSchedule: '15 1 * * *' } });
  });
});
