// A long-lived PR continues as new when Temporal suggests it, carrying its plan, hash and the
// delivery ids it has seen, so an approval after the run boundary still applies exactly that plan.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId } from '../../shared/contracts.ts';
import { SEARCH_ATTRIBUTES } from '../../shared/records.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

let h: Harness;
let tmp: string;
let repo: FixtureRepo;

beforeAll(async () => {
  // The dev server suggests continue-as-new after 40 history events instead of thousands.
  h = await startHarness({ serverArgs: ['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=40'] });
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-can-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
});

afterAll(async () => {
  await h?.teardown();
  await repo?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('the workflow continues as new when suggested and keeps the plan, its hash and seen deliveries', async () => {
  const stateFile = join(tmp, 'can.tfstate');
  repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: {} }) });
  const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'carried' } } }) }, { branch: 'feature' });
  const pr: TestPr = { owner: 'acme', repo: 'can', number: 1, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head(), author: 'alice' };
  const gh = new GithubMock('acme', 'can');
  const handle = h.env.client.workflow.getHandle(prWorkflowId('acme', 'can', 1));

  gh.createCheckRun(CHECK_PLAN, 'in_progress').comment(1, /Plan: 1 to add/).updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' }).createCheckRun(CHECK_APPLY, 'queued');
  await h.receive('pull_request', pullRequestEvent('opened', pr));
  await gh.settled();
  const before = await h.waitFor('acme', 'can', 1, (st) => st.plan?.status === 'ready');
  const firstRun = (await handle.describe()).runId;

  // Commands grow the history past the threshold; the workflow continues as new once idle.
  for (let i = 0; i < 4; i++) gh.permission('carol', 'write').reaction(9000 + i).comment(1, /Terrapin commands/);
  for (let i = 0; i < 4; i++) await h.receive('issue_comment', issueCommentEvent(pr, '/help', { login: 'carol', commentId: 9000 + i }), `help-${i}`);
  await gh.settled();
  const deadline = Date.now() + 30_000;
  while ((await handle.describe()).runId === firstRun && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect((await handle.describe()).runId).not.toBe(firstRun);

  const after = await h.status('acme', 'can', 1);
  expect(after.plan).toEqual(before.plan);
  // The new run starts with the old run's search attributes: still waiting for an approval (what the gauge counts).
  const waitingFor = async () => (await handle.describe()).typedSearchAttributes.get(SEARCH_ATTRIBUTES.waiting);
  expect(await waitingFor()).toBe('approval');

  // A delivery seen by the first run is still recognised as a duplicate by the new one.
  await handle.signal('prEvent', { type: 'command', deliveryId: 'help-0', source: 'comment', actor: 'carol', commentId: 9000, command: { name: 'help', extraArgs: [] } });

  gh.reaction(9100).permission('bob', 'write').prCommits(1).updateCheckRun(CHECK_APPLY, 'in_progress').comment(1, /Applied/).updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success' });
  await h.receive('issue_comment', issueCommentEvent(pr, '/approve', { login: 'bob', commentId: 9100 }));
  await gh.settled();
  const state = JSON.parse(await readFile(stateFile, 'utf8'));
  expect(state.resources.map((r: { name: string }) => r.name)).toEqual(['a']);
  // ...and the new run knew it was set: applied, the PR waits for nobody.
  await h.waitFor('acme', 'can', 1, (st) => st.plan?.status === 'applied' && !st.job);
  expect(await waitingFor()).toBeUndefined();
  gh.assertNoUnexpected();
});
