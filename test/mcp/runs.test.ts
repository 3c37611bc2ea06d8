// The MCP tools that start runs, through the SDK's client, against real Temporal, terraform and git
// (GitHub is nock, call by call): plans and drift checks start at once; applies and destroys only open the
// approval issue, and nothing changes until an allowed person comments /approve there.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client as McpClient, type Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { WorkflowNotFoundError } from '@temporalio/client';
import { execa } from 'execa';
import nock from 'nock';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebhookServer, type WebhookServer } from '../../app/http.ts';
import { createMcpServer } from '../../mcp/server.ts';
import { waitForOperatorRun } from '../../operator/start.ts';
import { operatorStatusQuery, type OperatorResult, type OperatorStatus } from '../../shared/operator.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueOnlyCommentEvent } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { connectOverHttp, connectOverStdio, json, repositoryOnGithub } from './clients.ts';

const TOKEN = 'mcp-runs-token-0123456789abcdef0123456789abcdef';
let h: Harness;
let web: WebhookServer;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-mcp-runs-'));
  h.allowRunnerPath(tmp);
  web = await startWebhookServer({ config: { ...h.config, mcpToken: TOKEN }, client: h.env.client, logger: pino({ level: 'silent' }), port: 0 });
}, 120_000);

afterAll(async () => {
  await web?.close();
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A repository of the test's own, one terraform_data per project, state files under tmp. */
async function fixture(name: string, config: string, projects: string[]) {
  const state = (p: string) => join(tmp, `${name}-${p}.tfstate`);
  const mainTf = (p: string) => terraformFixture({ stateFile: state(p), resources: { server: { input: 'v1' } } });
  const files: Record<string, string> = { '.terrapin.yml': config };
  for (const p of projects) files[`${p}/main.tf`] = mainTf(p);
  const repo = await createFixtureRepo(files);
  repos.push(repo);
  return {
    name,
    repo,
    async resources(p: string): Promise<string[]> {
      if (!existsSync(state(p))) return [];
      const s = JSON.parse(await readFile(state(p), 'utf8')) as { resources: Array<{ type: string; name: string; instances: unknown[] }> };
      return s.resources.filter((r) => r.instances.length > 0).map((r) => `${r.type}.${r.name}`);
    },
    /** What was deployed before: the project applied by hand. */
    async deploy(p: string): Promise<void> {
      const dir = await mkdtemp(join(tmp, 'by-hand-'));
      await writeFile(join(dir, 'main.tf'), mainTf(p));
      for (const args of [['init', '-input=false', '-no-color'], ['apply', '-auto-approve', '-input=false', '-no-color']]) {
        await execa('terraform', args, { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
      }
    },
  };
}

const operatorStatus = (runId: string): Promise<OperatorStatus> => h.env.client.workflow.getHandle(runId).query(operatorStatusQuery);

async function withClient<T>(connect: () => Promise<Client>, work: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect();
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}
const overStdio = () => connectOverStdio({ address: h.env.address, taskQueue: h.taskQueue });
const overHttp = () => connectOverHttp(web.port, TOKEN);

describe('starting runs', () => {
  it('start_plan and start_drift_check (stdio): the run ids, and the runs are real', async () => {
    const f = await fixture('mcp-plan', 'projects:\n  - name: app\n    dir: app\n', ['app']);
    const lookups = repositoryOnGithub('acme', f.name, f.repo.cloneUrl, 2);
    const gh = new GithubMock('acme', f.name);
    await withClient(overStdio, async (client) => {
      const plan = json(await client.callTool({ name: 'start_plan', arguments: { repo: `acme/${f.name}`, project: 'app' } }));
      expect(plan).toEqual({ runId: `operator:acme/${f.name}:app:plan`, kind: 'plan', status: 'started' });
      const planned = await waitForOperatorRun(h.env.client, { workflowId: plan.runId, kind: 'plan' });
      expect(planned.result).toMatchObject({ outcome: 'planned', projects: [{ project: 'app', outcome: 'planned' }] });

      await f.deploy('app');
      gh.openIssues([]); // clean: no drift issue to close
      const drift = json(await client.callTool({ name: 'start_drift_check', arguments: { repo: `acme/${f.name}`, project: 'app' } }));
      expect(drift).toEqual({ runId: `drift-run:acme/${f.name}:app`, kind: 'drift', status: 'started' });
      expect((await waitForOperatorRun(h.env.client, { workflowId: drift.runId, kind: 'drift' })).result).toMatchObject({ status: 'clean' });
    });
    await gh.settled();
    gh.assertNoUnexpected();
    lookups.assertNoUnexpected();
  });

  it('an unknown project is refused before anything starts, naming the projects there are', async () => {
    const f = await fixture('mcp-unknown', 'projects:\n  - name: app\n    dir: app\n  - name: db\n    dir: db\n', ['app', 'db']);
    const lookups = repositoryOnGithub('acme', f.name, f.repo.cloneUrl);
    await withClient(overHttp, async (client) => {
      const result = await client.callTool({ name: 'request_apply', arguments: { repo: `acme/${f.name}`, project: 'web' } });
      expect(result).toEqual({ isError: true, content: [{ type: 'text', text: `acme/${f.name} has no project "web"; its projects: app, db` }] });
    });
    lookups.assertNoUnexpected();
    // Never started (describe reads the execution itself, not eventually consistent visibility).
    await expect(h.env.client.workflow.getHandle(`operator:acme/${f.name}:web:apply`).describe()).rejects.toThrow(WorkflowNotFoundError);
  });

  it('request_apply (stdio): the issue link and the run id; it waits for approval and applies nothing', async () => {
    const f = await fixture('mcp-apply', 'projects:\n  - name: app\n    dir: app\n', ['app']);
    const lookups = repositoryOnGithub('acme', f.name, f.repo.cloneUrl);
    const gh = new GithubMock('acme', f.name);
    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Apply requested: app' && b.body.includes('terraform_data.server'), 11);
    const answer = await withClient(overStdio, async (client) => json(await client.callTool({ name: 'request_apply', arguments: { repo: `acme/${f.name}`, project: 'app' } })));
    expect(answer).toEqual({
      runId: `operator:acme/${f.name}:app:apply`,
      kind: 'apply',
      status: 'waiting-approval',
      issueUrl: `https://github.com/acme/${f.name}/issues/11`,
      issueNumber: 11,
      approval: `Nothing changes until a person whom the project's rules allow comments /approve on https://github.com/acme/${f.name}/issues/11. No tool can approve.`,
    });
    await gh.settled();
    gh.assertNoUnexpected();
    lookups.assertNoUnexpected();
    expect(await operatorStatus(answer.runId)).toMatchObject({ phase: 'waiting-approval', approvers: [], runs: [expect.stringMatching(/^run:.*:app:plan:/)] });
    expect(await f.resources('app')).toEqual([]);
  });

  it('request_apply with a plan slower than the wait: the run id at once; get_run then shows the phase and the issue link', async () => {
    const f = await fixture('mcp-slow', 'projects:\n  - name: app\n    dir: app\n', ['app']);
    const lookups = repositoryOnGithub('acme', f.name, f.repo.cloneUrl);
    const gh = new GithubMock('acme', f.name);
    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Apply requested: app', 13);
    // The SDK's client on its in-memory transport: the one way to give the server a wait of 0.
    const server = createMcpServer({ client: h.env.client, taskQueue: h.taskQueue, dataDir: h.config.dataDir, approvalWaitMs: 0 });
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new McpClient({ name: 'terrapin-test', version: '1.0.0' });
    await client.connect(clientSide);
    try {
      const answer = json(await client.callTool({ name: 'request_apply', arguments: { repo: `acme/${f.name}`, project: 'app' } }));
      expect(answer).toEqual({
        runId: `operator:acme/${f.name}:app:apply`,
        kind: 'apply',
        status: 'planning',
        approval: 'The plan is still running; the approval issue opens when it is ready: get_run with this run id shows its link. No tool can approve.',
      });
      let run: any;
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        run = json(await client.callTool({ name: 'get_run', arguments: { runId: answer.runId } }));
        if (run.phase === 'waiting-approval') break;
      }
      expect(run).toMatchObject({ runId: answer.runId, type: 'operator', status: 'running', phase: 'waiting-approval', issue: { number: 13, url: `https://github.com/acme/${f.name}/issues/13` }, approvers: [] });
      expect(run.runs).toEqual([expect.objectContaining({ kind: 'plan', project: 'app', outcome: 'planned' })]);
    } finally {
      await client.close();
    }
    await gh.settled();
    gh.assertNoUnexpected();
    lookups.assertNoUnexpected();
    expect(await f.resources('app')).toEqual([]);
  });

  it('request_destroy (HTTP): refused while others depend on it; with withDependents, nothing is destroyed until /approve', async () => {
    const f = await fixture('mcp-destroy', 'projects:\n  - name: net\n    dir: net\n  - name: app\n    dir: app\n    dependsOn: [net]\n', ['net', 'app']);
    await f.deploy('net');
    await f.deploy('app');
    const lookups = repositoryOnGithub('acme', f.name, f.repo.cloneUrl, 2);
    const gh = new GithubMock('acme', f.name);

    const refused = await withClient(overHttp, (client) => client.callTool({ name: 'request_destroy', arguments: { repo: `acme/${f.name}`, project: 'net' } }));
    expect(refused).toEqual({ isError: true, content: [{ type: 'text', text: 'refused: app depends on it; request_destroy with withDependents: true destroys them too (dependents first)' }] });

    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Destroy requested: net' && b.body.indexOf('1. `app`') < b.body.indexOf('1. `net`'), 12);
    const answer = await withClient(overHttp, async (client) => json(await client.callTool({ name: 'request_destroy', arguments: { repo: `acme/${f.name}`, project: 'net', withDependents: true } })));
    expect(answer).toMatchObject({ runId: `operator:acme/${f.name}:net:destroy`, kind: 'destroy', status: 'waiting-approval', issueUrl: `https://github.com/acme/${f.name}/issues/12`, issueNumber: 12 });
    await gh.settled();
    lookups.assertNoUnexpected();
    // Planned and waiting: the workflow says so, and the state still holds both projects.
    expect(await operatorStatus(answer.runId)).toMatchObject({ phase: 'waiting-approval', approvers: [], projects: ['app', 'net'] });
    expect(await f.resources('app')).toEqual(['terraform_data.server']);
    expect(await f.resources('net')).toEqual(['terraform_data.server']);

    // A person with write permission approves on the issue: now, and only now, it is destroyed.
    gh.reaction(1201)
      .permission('bob', 'write')
      .comment(12, /^Approved by @bob\. Destroying `net`/)
      .comment(12, (b) => b.includes('**Destroyed.**'))
      .closeIssue(12);
    const who = { owner: 'acme', repo: f.name, installationId: 4242, cloneUrl: f.repo.cloneUrl, author: 'alice' };
    await h.receive('issue_comment', issueOnlyCommentEvent(who, { number: 12, title: 'Destroy requested: net', labels: ['terrapin:gate'] }, '/approve', { login: 'bob', commentId: 1201 }), randomUUID());
    const end = await waitForOperatorRun(h.env.client, { workflowId: answer.runId, kind: 'destroy' });
    expect((end.result as OperatorResult).outcome).toBe('destroyed');
    await gh.settled();
    gh.assertNoUnexpected();
    expect(await f.resources('app')).toEqual([]);
    expect(await f.resources('net')).toEqual([]);
  });
});

describe('reading runs', () => {
  it('list_runs, get_run and get_status (stdio, then HTTP with the App\'s credentials) read what start_plan and start_drift_check ran', async () => {
    const f = await fixture('mcp-read', 'projects:\n  - name: app\n    dir: app\n', ['app']);
    const repository = `acme/${f.name}`;
    const lookups = repositoryOnGithub('acme', f.name, f.repo.cloneUrl, 2);
    const gh = new GithubMock('acme', f.name);
    await f.deploy('app');
    gh.openIssues([]); // the drift check is clean: no drift issue to close
    const { plan, drift } = await withClient(overStdio, async (client) => ({
      plan: json(await client.callTool({ name: 'start_plan', arguments: { repo: repository, project: 'app' } })).runId as string,
      drift: json(await client.callTool({ name: 'start_drift_check', arguments: { repo: repository, project: 'app' } })).runId as string,
    }));
    await waitForOperatorRun(h.env.client, { workflowId: plan, kind: 'plan' });
    await waitForOperatorRun(h.env.client, { workflowId: drift, kind: 'drift' });
    await gh.settled();
    lookups.assertNoUnexpected();

    await withClient(overStdio, async (client) => {
      // Visibility is eventually consistent: asked again until both finished runs show.
      let runs: any[] = [];
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        runs = json(await client.callTool({ name: 'list_runs', arguments: { repo: repository, project: 'app', since: '1h' } })).runs;
        if (runs.length === 2 && runs.every((r) => r.status === 'completed')) break;
      }
      expect(runs.map((r) => [r.kind, r.trigger, r.outcome]).sort()).toEqual([['drift', 'manual', 'clean'], ['plan', 'manual', 'no-changes']]);
      const onlyPlans = json(await client.callTool({ name: 'list_runs', arguments: { repo: repository, kind: 'plan', limit: 5 } })).runs;
      expect(onlyPlans.map((r: any) => r.kind)).toEqual(['plan']);

      // The operator's run: done, with the project run it made.
      const operatorRun = json(await client.callTool({ name: 'get_run', arguments: { runId: plan } }));
      expect(operatorRun).toMatchObject({ runId: plan, type: 'operator', status: 'completed', phase: 'done', result: { outcome: 'no-changes' } });
      expect(operatorRun.runs).toHaveLength(1);
      const projectRunId = operatorRun.runs[0].runId as string;
      expect(projectRunId).toMatch(new RegExp(`^run:acme/${f.name}:app:plan:`));

      // The project run: its record, its result and the end of its log (the plan's text).
      const run = json(await client.callTool({ name: 'get_run', arguments: { runId: projectRunId, tailLines: 5 } }));
      expect(run).toMatchObject({ runId: projectRunId, kind: 'plan', trigger: 'manual', outcome: 'no-changes', result: { outcome: 'no-changes' } });
      expect(run.log.text.split('\n').length).toBeLessThanOrEqual(5);
      expect(run.log.text).toMatch(/No changes/);
      expect(['file', 'tail']).toContain(run.log.source);

      expect(json(await client.callTool({ name: 'get_run', arguments: { runId: drift } }))).toMatchObject({ runId: drift, type: 'drift', status: 'completed', result: { status: 'clean' } });
      expect(await client.callTool({ name: 'get_run', arguments: { runId: 'run:acme/nope:app:plan:0000000-1' } })).toEqual({ isError: true, content: [{ type: 'text', text: 'no run run:acme/nope:app:plan:0000000-1' }] });
      const badSince = await client.callTool({ name: 'list_runs', arguments: { repo: repository, since: 'yesterday' } });
      expect(badSince.isError).toBe(true);
      expect((badSince.content as any)[0].text).toMatch(/expected a duration \(30d, 12h, 45m, 2w\) or a date/);

      // Without the App's credentials here, whether a drift issue is open is not known, and said so.
      const status = json(await client.callTool({ name: 'get_status', arguments: { repo: repository, project: 'app' } }));
      expect(status.projects).toHaveLength(1);
      expect(status.projects[0]).toMatchObject({ project: 'app', drift: { issue: 'unknown', lastCheck: { runId: expect.stringMatching(/:app:drift:/), outcome: 'clean' } } });
      expect(status.projects[0].summary).toEqual(expect.any(String));
    });

    // The webhook server has the App's credentials: the open drift issues are read from GitHub.
    const driftIssues = nock('https://api.github.com')
      .get(`/repos/acme/${f.name}/installation`)
      .reply(200, { id: 4242 })
      .get(`/repos/acme/${f.name}/issues`)
      .query({ labels: 'terrapin:drift', state: 'open', per_page: '100' })
      .reply(200, [{ number: 3, title: 'Drift detected: app', html_url: `https://github.com/acme/${f.name}/issues/3`, labels: [{ name: 'terrapin:drift' }] }]);
    const status = await withClient(overHttp, async (client) => json(await client.callTool({ name: 'get_status', arguments: { repo: repository, project: 'app' } })));
    expect(status.projects[0].drift.issue).toEqual({ number: 3, url: `https://github.com/acme/${f.name}/issues/3` });
    expect(driftIssues.isDone()).toBe(true);
    gh.assertNoUnexpected();
  });
});

describe('no tool approves', () => {
  it('the tools are exactly these, and none of them takes an approval', async () => {
    await withClient(overHttp, async (client) => {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['get_run', 'get_status', 'list_projects', 'list_runs', 'request_apply', 'request_destroy', 'start_drift_check', 'start_plan']);
      for (const tool of tools) {
        expect(tool.name).not.toMatch(/approve/);
        expect(Object.keys(tool.inputSchema.properties ?? {})).not.toContain('approve');
      }
    });
  });
});
