import { describe, expect, it } from 'vitest';
import { PR_EVENT_SIGNAL, prWorkflowId } from '../../../shared/contracts.ts';
import { fixtures } from '../fixtures/webhooks.ts';
import {
  freshPrNumber,
  receive,
  workflowExists,
  workflowRecord,
  webhookTestBed,
} from '../support.ts';

const bed = webhookTestBed();

/** The example's repository (electron/electron); external_id names a PR of it, as the workflow sets it. */
function click(identifier: string | undefined, externalIdFor: (owner: string, repo: string, number: number) => string) {
  const number = freshPrNumber();
  const base = fixtures['check_run.requested_action']();
  const [owner, repo] = [base.repository.owner.login, base.repository.name];
  const payload = fixtures['check_run.requested_action'](identifier, externalIdFor(owner, repo, number));
  return { payload, number, workflowId: prWorkflowId(owner, repo, number) };
}

describe('check_run.requested_action', () => {
  it.each([
    ['approve', 'approve'],
    ['apply', 'apply'],
    ['replan', 'plan'],
  ])('the %s button → /%s from a button, routed by external_id', async (identifier, command) => {
    const { payload, number, workflowId } = click(identifier, prWorkflowId);
    const deliveryId = await receive(bed.probot, 'check_run', payload);
    const { input, signals } = await workflowRecord(bed.client, workflowId);
    expect(input.pr).toEqual({
      number,
      repo: {
        owner: payload.repository.owner.login,
        name: payload.repository.name,
        installationId: payload.installation.id,
        cloneUrl: payload.repository.clone_url,
      },
    });
    expect(signals).toEqual([
      {
        name: PR_EVENT_SIGNAL,
        // The check run's commit travels with the click: a button of an older plan does nothing.
        event: { type: 'command', deliveryId, source: 'button', actor: payload.sender.login, command: { name: command, extraArgs: [] }, checkHeadSha: payload.check_run.head_sha },
      },
    ]);
  });

  it('a button on a per-project check run targets that project', async () => {
    const { payload, workflowId } = click('apply', prWorkflowId);
    payload.check_run.name = 'terrapin/apply: network';
    await receive(bed.probot, 'check_run', payload);
    const { signals } = await workflowRecord(bed.client, workflowId);
    expect(signals.map((s) => s.event)).toMatchObject([{ command: { name: 'apply', project: 'network', extraArgs: [] } }]);
  });

  it("another app's action identifier starts no workflow", async () => {
    const { payload, workflowId } = click(undefined, prWorkflowId);
    expect(payload.requested_action.identifier).toBe('lgtm|26764');
    await receive(bed.probot, 'check_run', payload);
    expect(await workflowExists(bed.client, workflowId)).toBe(false);
  });

  it('a check run without our external_id is ignored, even though it lists a pull request', async () => {
    const payload = fixtures['check_run.requested_action']('approve');
    expect(payload.check_run.external_id).toBe('');
    const listed: number = payload.check_run.pull_requests[0].number;
    await receive(bed.probot, 'check_run', payload);
    expect(await workflowExists(bed.client, prWorkflowId(payload.repository.owner.login, payload.repository.name, listed))).toBe(false);
  });

  it('an external_id naming another repository is ignored', async () => {
    const { payload } = click('approve', (_owner, _repo, n) => prWorkflowId('someone-else', 'infra', n));
    const number = Number(payload.check_run.external_id.split('#')[1]);
    await receive(bed.probot, 'check_run', payload);
    expect(await workflowExists(bed.client, prWorkflowId('someone-else', 'infra', number))).toBe(false);
    expect(await workflowExists(bed.client, prWorkflowId(payload.repository.owner.login, payload.repository.name, number))).toBe(false);
  });

  it('a malformed external_id is ignored', async () => {
    const { payload, workflowId } = click('approve', (owner, repo, n) => `deploy:${owner}/${repo}:${n}`);
    await receive(bed.probot, 'check_run', payload);
    expect(await workflowExists(bed.client, workflowId)).toBe(false);
  });
});
