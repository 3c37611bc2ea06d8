// An operator's credential for terraform, end to end through a PR: the worker is given it the way a
// deployment gives it (a variable of the worker's environment, named in TERRAPIN_TERRAFORM_ENV), terraform
// and its provisioners use it, and it shows nowhere: not in a comment, not in a check run, not in the
// Temporal history. What terraform printed of it is posted scrubbed, as [REDACTED] (scrubSecrets, app/logger.ts).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, readState, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

// Random per run: nothing in the code base or a fixture can contain it by chance.
const TOKEN = `tok-${randomBytes(16).toString('hex')}`;
/** What scrubSecrets puts in place of a secret in everything terraform and hooks print. */
const SCRUBBED = '[REDACTED]';

let h: Harness;
let tmp: string;
let repo: FixtureRepo;

beforeAll(async () => {
  h = await startHarness();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-credentials-'));
  // The state file and what the provisioner writes live here, outside every checkout.
  h.allowRunnerPath(tmp);
  await h.startWorker({
    terraformEnv: {
      allow: 'MY_CLOUD_TOKEN,TF_VAR_*',
      // NOT_PASSED is in the worker's environment but not in TERRAPIN_TERRAFORM_ENV: terraform must not see it.
      env: { MY_CLOUD_TOKEN: TOKEN, TF_VAR_cloud_token: TOKEN, NOT_PASSED: 'not-for-terraform' },
    },
  });
});
afterAll(async () => {
  await h?.teardown();
  await repo?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/**
 * A history as searchable text: every string in it, and every payload's bytes decoded as UTF-8 (the client
 * hands payload data and metadata over as base64 strings, or as bytes).
 */
function historyText(history: unknown): string {
  const out: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') {
      out.push(value);
      if (value.length >= 4 && value.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(value)) out.push(Buffer.from(value, 'base64').toString('utf8'));
    } else if (value instanceof Uint8Array) {
      out.push(Buffer.from(value).toString('utf8'));
    } else if (Array.isArray(value)) {
      value.forEach(walk);
    } else if (value && typeof value === 'object') {
      Object.values(value).forEach(walk);
    }
  };
  walk(history);
  return out.join('\n');
}

test('a credential in TERRAPIN_TERRAFORM_ENV reaches terraform and its provisioner, and is shown only scrubbed', async () => {
  const stateFile = join(tmp, 'creds.tfstate');
  const seen = join(tmp, 'provisioner-saw.sha256');
  const notPassed = join(tmp, 'provisioner-not-passed.txt');
  const backend = `terraform {\n  backend "local" {\n    path = "${stateFile}"\n  }\n}\nvariable "cloud_token" {\n  type = string\n}\n`;
  repo = await createFixtureRepo({ 'main.tf': backend });
  const baseSha = await repo.head();
  // The variable (through TF_VAR_cloud_token) is the resource's input, so the plan prints it; the
  // provisioner prints the token from its own environment and leaves a digest of it for the test.
  const resource = [
    'resource "terraform_data" "deploy" {',
    '  input = var.cloud_token',
    '  provisioner "local-exec" {',
    `    command = "echo \\"deploying with token $MY_CLOUD_TOKEN\\"; printf %s \\"$MY_CLOUD_TOKEN\\" | sha256sum | cut -d' ' -f1 > ${seen}; printf %s \\"$NOT_PASSED\\" > ${notPassed}"`,
    '  }',
    '}',
    '',
  ].join('\n');
  const headSha = await repo.commit({ 'main.tf': backend + resource }, { branch: 'deploy' });
  const pr: TestPr = { owner: 'acme', repo: 'creds', number: 1, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'deploy', baseRef: 'main', baseSha, author: 'alice' };
  const gh = new GithubMock('acme', 'creds');

  gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
    .comment(1, (b) => b.includes('**Terrapin plan**') && b.includes('Plan: 1 to add, 0 to change, 0 to destroy.'))
    .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: 'Plan: 1 to add, 0 to change, 0 to destroy.' })
    .createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
  await h.receive('pull_request', pullRequestEvent('opened', pr));
  await gh.settled();
  await h.waitFor('acme', 'creds', 1, (s) => s.plan?.status === 'ready');

  gh.reaction(11)
    .permission('bob', 'write')
    .prCommits(1)
    .updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / })
    .comment(1, /Applied/)
    .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
  await h.receive('issue_comment', issueCommentEvent(pr, '/approve', { login: 'bob', commentId: 11 }), 'approve-delivery');
  await gh.settled();
  await h.waitHandled('acme', 'creds', 1, 'approve-delivery');
  expect((await h.waitFor('acme', 'creds', 1, (s) => s.plan?.status === 'applied' && !s.job)).plan?.status).toBe('applied');
  gh.assertNoUnexpected();

  // Terraform had the value: through TF_VAR_ (the state holds the variable) and in the provisioner's environment.
  const state = await readState(stateFile);
  expect((state.resources.find((r) => r.name === 'deploy')!.instances[0]!.attributes.input as { value: string }).value).toBe(TOKEN);
  expect((await readFile(seen, 'utf8')).trim()).toBe(createHash('sha256').update(TOKEN).digest('hex'));
  // A variable of the worker's environment that TERRAPIN_TERRAFORM_ENV does not name stays out.
  expect(await readFile(notPassed, 'utf8')).toBe('');

  // What GitHub received: the plan shows the variable and the apply the provisioner's line, each scrubbed.
  const [plan, applied] = gh.comments();
  expect(plan).toMatch(new RegExp(`\\+ +input += "${SCRUBBED.replace(/[[\]]/g, '\\$&')}"`));
  expect(applied).toContain(`deploying with token ${SCRUBBED}`);
  const sent = JSON.stringify(gh.calls);
  // Every check-run body was looked at: plan created and completed, apply queued, applying, applied.
  expect(gh.calls.filter((c) => c.path.includes('/check-runs'))).toHaveLength(5);
  expect(sent).not.toContain(TOKEN);

  // Nor is it anywhere in Temporal: every run of every workflow of this test, payloads decoded.
  const histories: string[] = [];
  for await (const run of h.env.client.workflow.list()) {
    histories.push(historyText(await h.env.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()));
  }
  const all = histories.join('\n');
  expect(histories.length).toBeGreaterThanOrEqual(1);
  // Decoded for real: the PR workflow's own input and the plan's summary are readable in it.
  expect(all).toContain(prWorkflowId('acme', 'creds', 1));
  expect(all).toContain('Plan: 1 to add, 0 to change, 0 to destroy.');
  expect(all).not.toContain(TOKEN);
  expect(all).not.toContain(Buffer.from(TOKEN).toString('base64'));
});
