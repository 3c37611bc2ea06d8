// Drift checks end to end: the state changed out of band opens the project's drift issue; once the
// infrastructure matches the code again the issue is closed; `/drift` on a PR starts a check.
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RepoRef } from '../../shared/contracts.ts';
import { SEARCH_ATTRIBUTES } from '../../shared/records.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, issueOnlyCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { type DriftOutcome } from '../../shared/contracts.ts';

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];

const CONFIG = 'projects:\n  - name: infra\n    dir: .\n    drift: { schedule: "0 * * * *", reconcile: false }\n';

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-drift-wf-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Drifty {
  name: string;
  repo: FixtureRepo;
  stateFile: string;
  ref: () => RepoRef;
  /** Applies the given server size to the repository's state from a scratch dir: what a person does by hand. */
  applyByHand: (size: string) => Promise<void>;
  /** Runs a drift check of `infra` to its end. */
  check: () => Promise<DriftOutcome>;
}

/** A repository of the test's own (its name, state file and workflow ids are no other test's). */
async function drifty(name: string): Promise<Drifty> {
  const stateFile = join(tmp, `${name}.tfstate`);
  const repo = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { server: { input: 'size-small' } } }), '.terrapin.yml': CONFIG });
  repos.push(repo);
  const ref = (): RepoRef => ({ owner: 'acme', name, installationId: 42, cloneUrl: repo.cloneUrl });
  let runs = 0;
  return {
    name,
    repo,
    stateFile,
    ref,
    async applyByHand(size) {
      const dir = await mkdtemp(join(tmp, 'by-hand-'));
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'main.tf'), terraformFixture({ stateFile, resources: { server: { input: size } } }));
      const tf = (...args: string[]) => execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
      await tf('init', '-input=false', '-no-color');
      await tf('apply', '-auto-approve', '-input=false', '-no-color');
    },
    check: () => h.env.client.workflow.execute('driftWorkflow', { workflowId: `drift-run:acme/${name}:infra-${++runs}`, taskQueue: h.taskQueue, args: [{ repo: ref(), project: 'infra' }] }),
  };
}

describe('drift', () => {
  test('out-of-band change → issue opened with the drifted resource; fixed → issue closed', async () => {
    const d = await drifty('drift-oob');
    await d.applyByHand('size-small');
    await d.applyByHand('size-huge');
    const gh = new GithubMock('acme', d.name);
    gh.openIssues([])
      .label('terrapin:drift', true)
      .createIssue((b) => b.title === 'Drift detected: infra' && b.body.includes('terraform_data.server') && (b.labels ?? []).includes('terrapin:drift'), 77);
    const drifted = await d.check();
    expect(drifted).toMatchObject({ status: 'drifted', resources: ['terraform_data.server'] });
    await gh.settled();
    const body = gh.calledWith('POST', '/issues').find((c) => c.path.endsWith('/issues'))!.body.body as string;

    await d.applyByHand('size-small');
    gh.openIssues([{ number: 77, title: 'Drift detected: infra', body }])
      .comment(77, (b) => b.includes(drifted.sha.slice(0, 7)))
      .closeIssue(77);
    expect(await d.check()).toMatchObject({ status: 'clean', resources: [] });
    await gh.settled();
    gh.assertNoUnexpected();
  });

  test('/drift on a PR starts a check of the named project', async () => {
    const d = await drifty('drift-pr');
    await d.applyByHand('size-small'); // what main describes is deployed
    const { repo } = d;
    const pr: TestPr = { owner: 'acme', repo: d.name, number: 9, installationId: 42, cloneUrl: repo.cloneUrl, headSha: await repo.head(), headRef: 'main', baseRef: 'main', baseSha: await repo.head(), author: 'alice' };
    const gh = new GithubMock('acme', d.name);
    // The comment starts the PR workflow, which reads the PR first.
    gh.pullRequest(9, pr);
    gh.reaction(901).permission('bob', 'write').comment(9, (b) => b.includes('Checking `infra` for drift'));
    // The check itself: no drift (the state matches main), nothing open to close.
    gh.openIssues([]);
    await h.receive('issue_comment', issueCommentEvent(pr, '/drift -p infra', { login: 'bob', commentId: 901 }));
    await gh.settled();
    const handle = h.env.client.workflow.getHandle(`drift-run:acme/${d.name}:infra`);
    const run = await handle.result();
    expect(run).toMatchObject({ status: 'clean' });
    gh.assertNoUnexpected();
    // The check is one project run, recorded for a history view: who asked, for what, at which commit, how it ended.
    const query = `TerrapinRepository = 'acme/${d.name}' AND TerrapinProject = 'infra' AND TerrapinKind = 'drift' AND TerrapinTrigger = 'manual' AND TerrapinActor = 'bob' AND TerrapinHeadSha = '${run.sha}'`;
    // Visibility is eventually consistent: list until the finished run shows up.
    let records: WorkflowExecutionInfo[] = [];
    for (const deadline = Date.now() + 30_000; records.length === 0 && Date.now() < deadline; ) {
      for await (const r of h.env.client.workflow.list({ query })) records.push(r);
      if (records.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(records).toHaveLength(1);
    const sa = records[0]!.typedSearchAttributes;
    expect(records[0]!.workflowId).toMatch(new RegExp(`^run:acme/${d.name}:infra:drift:${run.sha.slice(0, 7)}-\\d+$`));
    expect({
      repository: sa.get(SEARCH_ATTRIBUTES.repository),
      project: sa.get(SEARCH_ATTRIBUTES.project),
      kind: sa.get(SEARCH_ATTRIBUTES.kind),
      trigger: sa.get(SEARCH_ATTRIBUTES.trigger),
      actor: sa.get(SEARCH_ATTRIBUTES.actor),
      headSha: sa.get(SEARCH_ATTRIBUTES.headSha),
      outcome: sa.get(SEARCH_ATTRIBUTES.outcome),
      counts: [sa.get(SEARCH_ATTRIBUTES.add), sa.get(SEARCH_ATTRIBUTES.change), sa.get(SEARCH_ATTRIBUTES.destroy)],
    }).toEqual({ repository: `acme/${d.name}`, project: 'infra', kind: 'drift', trigger: 'manual', actor: 'bob', headSha: run.sha, outcome: 'clean', counts: [0, 0, 0] });
  });

  test('a merged PR syncs the drift schedules with the default branch config', async () => {
    const { name, repo } = await drifty('drift-merge');
    await expect(h.env.client.schedule.getHandle(`drift:acme/${name}:infra`).describe()).rejects.toThrow();
    const pr: TestPr = { owner: 'acme', repo: name, number: 10, installationId: 42, cloneUrl: repo.cloneUrl, headSha: await repo.head(), headRef: 'feature', baseRef: 'main', baseSha: await repo.head(), author: 'alice' };
    const gh = new GithubMock('acme', name);
    await h.receive('pull_request', pullRequestEvent('closed', pr, { merged: true }));
    await h.env.client.workflow.getHandle(`pr:acme/${name}#10`).result();
    const schedule = await h.env.client.schedule.getHandle(`drift:acme/${name}:infra`).describe();
    expect(schedule.action).toMatchObject({ type: 'startWorkflow', workflowType: 'driftWorkflow' });
    expect(schedule.action.type === 'startWorkflow' && schedule.action.args).toEqual([{ repo: expect.objectContaining({ owner: 'acme', name }), project: 'infra' }]);
    gh.assertNoUnexpected();
  });

  test('reconcile: /approve on the drift issue by someone permissions.approve allows applies the checked plan and closes the issue', async () => {
    const reconcileState = join(tmp, 'recon.tfstate');
    const recon = await createFixtureRepo({
      'main.tf': terraformFixture({ stateFile: reconcileState, resources: { server: { input: 'size-small' } } }),
      '.terrapin.yml': 'projects:\n  - name: infra\n    dir: .\n    drift: { schedule: "0 * * * *", reconcile: true }\npermissions:\n  approve:\n    users: [bob]\n',
    });
    try {
      const byHand = async (size: string) => {
        const dir = await mkdtemp(join(tmp, 'recon-hand-'));
        await writeFile(join(dir, 'main.tf'), terraformFixture({ stateFile: reconcileState, resources: { server: { input: size } } }));
        const tf = (...args: string[]) => execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
        await tf('init', '-input=false', '-no-color');
        await tf('apply', '-auto-approve', '-input=false', '-no-color');
      };
      await byHand('size-small');
      await byHand('size-huge');
      const repoRef: RepoRef = { owner: 'acme', name: 'recon', installationId: 42, cloneUrl: recon.cloneUrl };
      const gh = new GithubMock('acme', 'recon');
      gh.openIssues([])
        .label('terrapin:drift', true)
        .createIssue((b) => b.title === 'Drift detected: infra' && b.body.includes('/approve'), 88);
      const drifted: DriftOutcome = await h.env.client.workflow.execute('driftWorkflow', { workflowId: 'drift-run:acme/recon:infra', taskQueue: h.taskQueue, args: [{ repo: repoRef, project: 'infra' }] });
      expect(drifted.status).toBe('drifted');
      await gh.settled();
      const body = gh.calledWith('POST', '/issues').find((c) => c.path.endsWith('/issues'))!.body.body as string;

      const issue = { number: 88, title: 'Drift detected: infra', labels: ['terrapin:drift'] };
      const who = { owner: 'acme', repo: 'recon', installationId: 42, cloneUrl: recon.cloneUrl, author: 'alice' };
      // A reader cannot reconcile.
      gh.reaction(8801).permission('carol', 'read').comment(88, /needs write permission/);
      await h.receive('issue_comment', issueOnlyCommentEvent(who, issue, '/approve', { login: 'carol', commentId: 8801 }));
      await gh.settled();
      expect(JSON.parse(await readFile(reconcileState, 'utf8')).resources[0].instances[0].attributes.input.value).toBe('size-huge');
      // Nor can a writer the config does not list.
      gh.reaction(8803).permission('dave', 'write').comment(88, /^@dave, `\.terrapin\.yml` on the default branch lets only @bob approve reconciling `infra`\.\n/);
      await h.receive('issue_comment', issueOnlyCommentEvent(who, issue, '/approve', { login: 'dave', commentId: 8803 }));
      await gh.settled();
      expect(JSON.parse(await readFile(reconcileState, 'utf8')).resources[0].instances[0].attributes.input.value).toBe('size-huge');

      gh.reaction(8802)
        .permission('bob', 'write')
        .comment(88, (b) => b.includes('**Drift reconciled.**') && b.includes('@bob'))
        .openIssues([{ number: 88, title: 'Drift detected: infra', body }])
        .comment(88, (b) => !b.includes('**Drift reconciled.**'))
        .closeIssue(88);
      await h.receive('issue_comment', issueOnlyCommentEvent(who, issue, '/approve', { login: 'bob', commentId: 8802 }));
      expect(await h.env.client.workflow.getHandle('drift-reconcile:acme/recon:infra').result()).toBe('applied');
      await gh.settled();
      expect(JSON.parse(await readFile(reconcileState, 'utf8')).resources[0].instances[0].attributes.input.value).toBe('size-small');
      gh.assertNoUnexpected();
    } finally {
      await recon.cleanup();
    }
  });

  test('/drift on a drift issue checks that project again', async () => {
    const d = await drifty('drift-issue');
    await d.applyByHand('size-small'); // the state matches main
    const gh = new GithubMock('acme', d.name);
    const who = { owner: 'acme', repo: d.name, installationId: 42, cloneUrl: d.repo.cloneUrl, author: 'alice' };
    gh.reaction(7701).permission('bob', 'write').comment(77, /Checking `infra` for drift/);
    gh.openIssues([]); // the check: the state matches main again, nothing open to close
    await h.receive('issue_comment', issueOnlyCommentEvent(who, { number: 77, title: 'Drift detected: infra', labels: ['terrapin:drift'] }, '/drift', { login: 'bob', commentId: 7701 }));
    await gh.settled();
    expect(await h.env.client.workflow.getHandle(`drift-run:acme/${d.name}:infra`).result()).toMatchObject({ status: 'clean' });
    gh.assertNoUnexpected();
  });
});
