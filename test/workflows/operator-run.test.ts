// Operator runs end to end (real Temporal, terraform, git; GitHub mocked at HTTP): an apply or destroy
// started from the CLI's library opens a `terrapin:gate` issue with the plan and applies nothing until an
// allowed `/approve` there; a destroy takes its dependents only when asked, downstreams first, and stops at
// the first failure; plans and drift checks are recorded as manual runs.
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deployStateQuery, deployWorkflowId, type DeployEvent, type RepoRef } from '../../shared/contracts.ts';
import { OPERATOR_WORKFLOW_TYPE, operatorStatusQuery, operatorWorkflowId, type OperatorResult, type OperatorStatus } from '../../shared/operator.ts';
import { SEARCH_ATTRIBUTES } from '../../shared/records.ts';
import { startOperatorRun, waitForOperatorRun, type OperatorDeps } from '../../operator/start.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueOnlyCommentEvent } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

let h: Harness;
let tmp: string;
let deps: OperatorDeps;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  deps = { client: h.env.client, taskQueue: h.taskQueue };
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-operator-'));
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Fixture {
  name: string;
  repo: FixtureRepo;
  ref: RepoRef;
  state: (project: string) => string;
  /** What the state holds: resource addresses. */
  resources: (project: string) => Promise<string[]>;
  /** Applies the project as main describes it, by hand (what was deployed before). */
  deploy: (project: string) => Promise<void>;
}

/** A repository of the test's own; `mainTf(project, stateFile)` gives each project's main.tf. */
async function fixture(name: string, config: string, projects: string[], mainTf: (project: string, stateFile: string) => string = (_p, stateFile) => terraformFixture({ stateFile, resources: { server: { input: 'v1' } } })): Promise<Fixture> {
  const state = (p: string) => join(tmp, `${name}-${p}.tfstate`);
  const files: Record<string, string> = { '.terrapin.yml': config };
  for (const p of projects) files[`${p}/main.tf`] = mainTf(p, state(p));
  const repo = await createFixtureRepo(files);
  repos.push(repo);
  return {
    name,
    repo,
    ref: { owner: 'acme', name, installationId: 42, cloneUrl: repo.cloneUrl },
    state,
    async resources(p) {
      if (!existsSync(state(p))) return [];
      const s = JSON.parse(await readFile(state(p), 'utf8')) as { resources: Array<{ type: string; name: string; instances: unknown[] }> };
      return s.resources.filter((r) => r.instances.length > 0).map((r) => `${r.type}.${r.name}`);
    },
    async deploy(p) {
      const dir = await mkdtemp(join(tmp, 'by-hand-'));
      await writeFile(join(dir, 'main.tf'), mainTf(p, state(p)));
      const tf = (...args: string[]) => execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
      await tf('init', '-input=false', '-no-color');
      await tf('apply', '-auto-approve', '-input=false', '-no-color');
    },
  };
}

const status = (f: Fixture, project: string, kind: 'apply' | 'destroy' | 'plan'): Promise<OperatorStatus> =>
  h.env.client.workflow.getHandle(operatorWorkflowId(f.ref, project, kind)).query(operatorStatusQuery);

/** Waits until the run handled the delivery (its status lists it): what it was going to do is done. */
async function handled(f: Fixture, project: string, kind: 'apply' | 'destroy', deliveryId: string): Promise<OperatorStatus> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const s = await status(f, project, kind);
    if (s.handled.includes(deliveryId) || s.phase === 'done') return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`delivery ${deliveryId} not handled`);
}

/** A comment on the gate issue, delivered as GitHub would; resolves once the run handled it. */
async function comment(f: Fixture, issue: { number: number; title: string }, login: string, commentId: number, body = '/approve'): Promise<string> {
  const deliveryId = randomUUID();
  const who = { owner: 'acme', repo: f.name, installationId: 42, cloneUrl: f.repo.cloneUrl, author: 'alice' };
  await h.receive('issue_comment', issueOnlyCommentEvent(who, { ...issue, labels: ['terrapin:gate'] }, body, { login, commentId }), deliveryId);
  return deliveryId;
}

async function records(query: string, count: number): Promise<WorkflowExecutionInfo[]> {
  let found: WorkflowExecutionInfo[] = [];
  // Visibility is eventually consistent: list until the finished runs show up.
  for (const deadline = Date.now() + 30_000; found.length < count && Date.now() < deadline; ) {
    found = [];
    for await (const r of h.env.client.workflow.list({ query })) found.push(r);
    if (found.length < count) await new Promise((r) => setTimeout(r, 200));
  }
  return found;
}

describe('operator runs', () => {
  test('apply: the issue shows the plan; nothing applies until an allowed /approve; the requester, a reader and an unlisted writer are refused', async () => {
    const f = await fixture('op-apply', 'projects:\n  - name: app\n    dir: app\npermissions:\n  approve:\n    users: [bob, olivia]\n', ['app']);
    const gh = new GithubMock('acme', f.name);
    gh.label('terrapin:gate', true);
    gh.createIssue((b) => b.title === 'Apply requested: app' && (b.labels ?? []).includes('terrapin:gate') && b.body.includes('terraform_data.server') && b.body.includes('requested by @olivia') && b.body.includes('comment `/approve` on this issue. Who may: @bob, @olivia, other than @olivia.'), 5);
    const started = await startOperatorRun(deps, { repo: f.ref, project: 'app', kind: 'apply', actor: 'olivia' });
    expect(started).toEqual({ workflowId: `operator:acme/${f.name}:app:apply`, kind: 'apply', issueUrl: `https://github.com/acme/${f.name}/issues/5`, issueNumber: 5 });
    await gh.settled();
    expect((await status(f, 'app', 'apply')).phase).toBe('waiting-approval');
    const issue = { number: 5, title: 'Apply requested: app' };

    // The operator who asked cannot approve their own request.
    gh.reaction(501).comment(5, /^@olivia, you asked for this apply: someone else must approve it\./);
    await handled(f, 'app', 'apply', await comment(f, issue, 'olivia', 501));
    // A reader cannot approve; another command is answered.
    gh.reaction(502).permission('carol', 'read').comment(5, /^@carol, approving this apply needs write permission/);
    await handled(f, 'app', 'apply', await comment(f, issue, 'carol', 502));
    // Nor can a writer the default branch's rules do not list.
    gh.reaction(505).permission('dave', 'write').comment(5, /^@dave, `\.terrapin\.yml` on the default branch lets only @bob, @olivia approve applying `app`\./);
    await handled(f, 'app', 'apply', await comment(f, issue, 'dave', 505));
    gh.reaction(503).comment(5, /^@carol, only `\/approve` \(let it proceed\) and `\/cancel` \(withdraw it\) work on this issue/);
    await handled(f, 'app', 'apply', await comment(f, issue, 'carol', 503, '/plan'));
    await gh.settled();
    const waiting = await status(f, 'app', 'apply');
    expect(waiting).toMatchObject({ phase: 'waiting-approval', approvers: [] });
    expect(await f.resources('app')).toEqual([]);
    // What terrapin_approvals_waiting counts.
    const waitingFor = async () => (await h.env.client.workflow.getHandle(started.workflowId).describe()).typedSearchAttributes.get(SEARCH_ATTRIBUTES.waiting);
    expect(await waitingFor()).toBe('approval');

    gh.reaction(504)
      .permission('bob', 'write')
      .comment(5, /^Approved by @bob\. Applying `app` as soon as no deploy or pull request is applying it\./)
      .comment(5, (b) => b.includes('**Applied.**') && b.includes('approved by @bob') && b.includes('| `app` | applied |'))
      .closeIssue(5);
    await comment(f, issue, 'bob', 504);
    const end = await waitForOperatorRun(h.env.client, started);
    expect(end.result).toMatchObject({ outcome: 'applied', approvers: ['bob'], issue: { number: 5 } });
    expect(await waitingFor()).toBeUndefined();
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await f.resources('app')).toEqual(['terraform_data.server']);
    const closed = gh.calledWith('PATCH', '/issues/5')[0]!.body;
    expect(closed).toMatchObject({ state: 'closed', state_reason: 'completed' });

    // Recorded: a manual apply by olivia, approved by bob.
    const [applyRun] = await records(`TerrapinRepository = 'acme/${f.name}' AND TerrapinKind = 'apply' AND TerrapinTrigger = 'manual'`, 1);
    const sa = applyRun!.typedSearchAttributes;
    expect({ actor: sa.get(SEARCH_ATTRIBUTES.actor), approvers: sa.get(SEARCH_ATTRIBUTES.approvers), outcome: sa.get(SEARCH_ATTRIBUTES.outcome) }).toEqual({ actor: 'olivia', approvers: ['bob'], outcome: 'applied' });
  });

  test('an approved apply waits for its turn in the project\'s deploy queue: nothing applies while a deploy runs', async () => {
    const f = await fixture('op-queue', 'projects:\n  - name: app\n    dir: app\n', ['app']);
    const sha = await f.repo.head();
    const deployId = deployWorkflowId(f.ref, 'app');
    const deploy = (event: DeployEvent) => h.env.client.workflow.signalWithStart('deployWorkflow', { workflowId: deployId, taskQueue: h.taskQueue, args: [{ repo: f.ref, project: 'app' }], signal: 'deploy', signalArgs: [event] });
    const gh = new GithubMock('acme', f.name);
    // A pushed revision whose deploy waits for an upstream project's deploy: the queue is busy with it.
    gh.createCheckRun('terrapin/deploy: app', 'in_progress');
    await deploy({ type: 'revision', revision: { sha, trigger: 'push', actor: 'pat', upstreams: ['net'], downstreams: [] } });
    await gh.settled();

    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Apply requested: app', 8);
    const started = await startOperatorRun(deps, { repo: f.ref, project: 'app', kind: 'apply' });
    await gh.settled();
    gh.reaction(801).permission('bob', 'write').comment(8, /^Approved by @bob\./);
    await comment(f, { number: 8, title: 'Apply requested: app' }, 'bob', 801);
    await gh.settled();
    // Approved, and in line behind the deploy: the queue lists it, nothing is applied.
    for (const deadline = Date.now() + 30_000; (await h.env.client.workflow.getHandle(deployId).query(deployStateQuery)).holds === undefined && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    expect(await h.env.client.workflow.getHandle(deployId).query(deployStateQuery)).toMatchObject({ current: { sha, phase: 'waiting-upstream' }, holds: [started.workflowId] });
    expect((await status(f, 'app', 'apply')).phase).toBe('waiting-queue');
    expect(await f.resources('app')).toEqual([]);

    // The deploy ends (its upstream failed, so it is skipped); then it is the operator's turn.
    gh.updateCheckRun('terrapin/deploy: app', 'completed', { conclusion: 'skipped' })
      .comment(8, (b) => b.includes('**Applied.**'))
      .closeIssue(8);
    await deploy({ type: 'upstream', sha, project: 'net', outcome: 'failed' });
    expect((await waitForOperatorRun(h.env.client, started)).result).toMatchObject({ outcome: 'applied' });
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await f.resources('app')).toEqual(['terraform_data.server']);
    // The turn was given back: the queue waits for the next revision.
    const after = await h.env.client.workflow.getHandle(deployId).query(deployStateQuery);
    expect(after.holds).toBeUndefined();
    expect(after.history).toEqual([{ sha, outcome: 'skipped' }]);
  });

  test('a request can be withdrawn with /cancel by someone who may apply; one nobody approves expires; one cancelled in Temporal closes its issue', async () => {
    const f = await fixture('op-cancel', 'projects:\n  - name: app\n    dir: app\n', ['app']);
    const gh = new GithubMock('acme', f.name);
    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Destroy requested: app' && b.body.includes('`/cancel` withdraws the request'), 9);
    await f.deploy('app');
    const started = await startOperatorRun(deps, { repo: f.ref, project: 'app', kind: 'destroy', actor: 'olivia' });
    await gh.settled();
    const issue = { number: 9, title: 'Destroy requested: app' };
    gh.reaction(901).permission('carol', 'read').comment(9, /^@carol, cancelling this destroy needs write permission/);
    await handled(f, 'app', 'destroy', await comment(f, issue, 'carol', 901, '/cancel'));
    gh.reaction(902)
      .permission('bob', 'write')
      .comment(9, (b) => b.includes('**Not destroyed:** cancelled by @bob. Nothing was changed.'))
      .closeIssue(9);
    await comment(f, issue, 'bob', 902, '/cancel');
    expect((await waitForOperatorRun(h.env.client, started)).result).toMatchObject({ outcome: 'cancelled' });
    await gh.settled();
    expect(gh.calledWith('PATCH', '/issues/9')[0]!.body).toMatchObject({ state: 'closed', state_reason: 'not_planned' });
    expect(await f.resources('app')).toEqual(['terraform_data.server']);

    // The same request with a short approval window (the default is 7 days): it lapses, the issue says so.
    gh.label('terrapin:gate', true)
      .createIssue((b) => b.title === 'Destroy requested: app', 10)
      .comment(10, (b) => b.includes('**Not destroyed:** nobody approved the plan in time.'))
      .closeIssue(10);
    const lapsed: OperatorResult = await h.env.client.workflow.execute(OPERATOR_WORKFLOW_TYPE, {
      workflowId: operatorWorkflowId(f.ref, 'app', 'destroy'),
      taskQueue: h.taskQueue,
      args: [{ repo: f.ref, project: 'app', kind: 'destroy', approvalWindow: '2 seconds' }],
    });
    expect(lapsed.outcome).toBe('expired');
    await gh.settled();

    // Cancelled in Temporal while it waits: the issue says so and is closed, not left open.
    gh.label('terrapin:gate', true)
      .createIssue((b) => b.title === 'Destroy requested: app', 11)
      .comment(11, (b) => b.includes('**Not destroyed:** the request was cancelled in Temporal. Nothing was changed.'))
      .closeIssue(11);
    const third = await startOperatorRun(deps, { repo: f.ref, project: 'app', kind: 'destroy' });
    await h.env.client.workflow.getHandle(third.workflowId).cancel();
    await expect(waitForOperatorRun(h.env.client, third)).rejects.toThrow();
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await f.resources('app')).toEqual(['terraform_data.server']);
  });

  test('destroy without --with-dependents is refused, naming the dependents; nothing is planned or asked', async () => {
    const f = await fixture('op-refuse', 'projects:\n  - name: net\n    dir: net\n  - name: app\n    dir: app\n    dependsOn: [net]\n  - name: web\n    dir: web\n    dependsOn: [app]\n', ['net', 'app', 'web']);
    const gh = new GithubMock('acme', f.name);
    const started = await startOperatorRun(deps, { repo: f.ref, project: 'net', kind: 'destroy', actor: 'olivia' });
    expect(started.issueUrl).toBeUndefined();
    const end = await waitForOperatorRun(h.env.client, started);
    expect(end.result).toEqual({ outcome: 'refused', sha: await f.repo.head(), reason: 'dependents', dependents: ['app', 'web'], projects: [] });
    expect((await status(f, 'net', 'destroy')).runs).toEqual([]);
    gh.assertNoUnexpected();
  });

  test('destroy --with-dependents: destroyNeeds approvals, then downstreams first', async () => {
    const config = 'defaults:\n  applyRequirements:\n    - approved\n    - destroyNeeds: { approvals: 2 }\nprojects:\n  - name: net\n    dir: net\n  - name: app\n    dir: app\n    dependsOn: [net]\n';
    const f = await fixture('op-destroy', config, ['net', 'app']);
    await f.deploy('net');
    await f.deploy('app');
    const gh = new GithubMock('acme', f.name);
    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Destroy requested: net' && b.body.indexOf('1. `app`') < b.body.indexOf('1. `net`') && b.body.includes('2 for a plan that destroys anything'), 6);
    const started = await startOperatorRun(deps, { repo: f.ref, project: 'net', kind: 'destroy', withDependents: true, actor: 'olivia' });
    expect(started.issueNumber).toBe(6);
    await gh.settled();
    const issue = { number: 6, title: 'Destroy requested: net' };

    // One approval is not enough for a plan that destroys.
    gh.reaction(601).permission('bob', 'write').comment(6, (b) => b.startsWith('Approval by @bob recorded.') && b.includes('the plan destroys 1 resource'));
    await handled(f, 'net', 'destroy', await comment(f, issue, 'bob', 601));
    await gh.settled();
    expect(await status(f, 'net', 'destroy')).toMatchObject({ phase: 'waiting-approval', approvers: ['bob'] });
    expect(await f.resources('app')).toEqual(['terraform_data.server']);

    gh.reaction(602)
      .permission('dave', 'write')
      .comment(6, /^Approved by @bob, @dave\. Destroying `net`/)
      .comment(6, (b) => b.includes('**Destroyed.**') && /\| `app` \| destroyed \|[^\n]*\n\| `net` \| destroyed \|/.test(b))
      .closeIssue(6);
    await comment(f, issue, 'dave', 602);
    const end = await waitForOperatorRun(h.env.client, started);
    const result = end.result as OperatorResult;
    expect(result.outcome).toBe('destroyed');
    // Reverse dependency order: the dependent went first.
    expect(result.projects.map((p) => [p.project, p.outcome])).toEqual([
      ['app', 'applied'],
      ['net', 'applied'],
    ]);
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await f.resources('app')).toEqual([]);
    expect(await f.resources('net')).toEqual([]);
    // Each destroy is a run of kind destroy: a plan -destroy and the apply of exactly that plan.
    const destroyRuns = await records(`TerrapinRepository = 'acme/${f.name}' AND TerrapinKind = 'destroy' AND TerrapinTrigger = 'manual'`, 4);
    expect(destroyRuns).toHaveLength(4);
  });

  test('a failed destroy stops: the upstream is left alone and nothing is recreated', async () => {
    const failingDestroy = (p: string, stateFile: string) =>
      p === 'app'
        ? `terraform {\n  backend "local" {\n    path = "${stateFile}"\n  }\n}\nresource "terraform_data" "server" {\n  input = "v1"\n  provisioner "local-exec" {\n    when    = destroy\n    command = "echo destroy refused on purpose >&2; exit 1"\n  }\n}\n`
        : terraformFixture({ stateFile, resources: { server: { input: 'v1' } } });
    const f = await fixture('op-fail', 'projects:\n  - name: net\n    dir: net\n  - name: app\n    dir: app\n    dependsOn: [net]\n', ['net', 'app'], failingDestroy);
    await f.deploy('net');
    await f.deploy('app');
    const gh = new GithubMock('acme', f.name);
    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Destroy requested: net', 7);
    const started = await startOperatorRun(deps, { repo: f.ref, project: 'net', kind: 'destroy', withDependents: true });
    await gh.settled();
    gh.reaction(701)
      .permission('bob', 'write')
      .comment(7, /^Approved by @bob\./)
      .comment(7, (b) => b.includes('**Destroy failed') && b.includes('| `app` | apply-failed |') && b.includes('| `net` | skipped |') && b.includes('destroy refused on purpose'))
      .closeIssue(7);
    await comment(f, { number: 7, title: 'Destroy requested: net' }, 'bob', 701);
    const end = await waitForOperatorRun(h.env.client, started);
    expect((end.result as OperatorResult).outcome).toBe('failed');
    await gh.settled();
    gh.assertNoUnexpected();
    expect(gh.calledWith('PATCH', '/issues/7')[0]!.body).toMatchObject({ state: 'closed', state_reason: 'not_planned' });
    expect(await f.resources('net')).toEqual(['terraform_data.server']);
    expect(await f.resources('app')).toEqual(['terraform_data.server']);
  });

  test('plan and drift operator runs are recorded with trigger manual', async () => {
    const f = await fixture('op-plan', 'projects:\n  - name: app\n    dir: app\n', ['app']);
    const gh = new GithubMock('acme', f.name);
    const plan = await startOperatorRun(deps, { repo: f.ref, project: 'app', kind: 'plan', actor: 'olivia' });
    expect(plan).toEqual({ workflowId: `operator:acme/${f.name}:app:plan`, kind: 'plan' });
    const planned = await waitForOperatorRun(h.env.client, plan);
    expect(planned.result).toMatchObject({ outcome: 'planned', projects: [{ project: 'app', outcome: 'planned', summaryLine: expect.any(String) }] });

    await f.deploy('app');
    gh.openIssues([]); // the drift check is clean: no drift issue to close
    const drift = await startOperatorRun(deps, { repo: f.ref, project: 'app', kind: 'drift', actor: 'olivia' });
    expect(drift).toEqual({ workflowId: `drift-run:acme/${f.name}:app`, kind: 'drift' });
    expect((await waitForOperatorRun(h.env.client, drift)).result).toMatchObject({ status: 'clean' });
    await gh.settled();
    gh.assertNoUnexpected();

    const runs = await records(`TerrapinRepository = 'acme/${f.name}' AND TerrapinTrigger = 'manual' AND TerrapinActor = 'olivia'`, 2);
    expect(runs.map((r) => r.typedSearchAttributes.get(SEARCH_ATTRIBUTES.kind)).sort()).toEqual(['drift', 'plan']);
  });
});
