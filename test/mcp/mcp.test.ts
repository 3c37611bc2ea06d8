// The MCP server through the SDK's own client, over both transports: `terrapin mcp` on stdio (a real
// subprocess) and Streamable HTTP at /mcp on the real webhook server. A real Temporal dev server and worker
// read a real git repository; GitHub (the repository's installation and clone URL) is nock, call by call.
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { execa } from 'execa';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import nock from 'nock';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebhookServer, type WebhookServer } from '../../app/http.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { ROOT, connectOverHttp, connectOverStdio, repositoryOnGithub, text } from './clients.ts';

const TOKEN = 'mcp-test-token-0123456789abcdef0123456789abcdef';
const CONFIG = `
projects:
  - name: network
    dir: infra/network
  - name: app
    dir: infra/app
    apply: afterMerge
    inputs:
      vpc_id: network.outputs.vpc_id
      subnet: network.outputs.subnet_id
    drift:
      schedule: "0 6 * * 1-5"
  - name: dns
    dir: infra/dns
    workspace: prod
    dependsOn: [app]
`;

let h: Harness;
let repo: FixtureRepo;
let web: WebhookServer;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  repo = await createFixtureRepo({
    '.terrapin.yml': CONFIG,
    'infra/network/main.tf': 'output "vpc_id" { value = "vpc-1" }\n',
    'infra/app/main.tf': 'variable "vpc_id" {}\nvariable "subnet" {}\n',
    'infra/dns/main.tf': '',
  });
  web = await startWebhookServer({ config: { ...h.config, mcpToken: TOKEN }, client: h.env.client, logger: pino({ level: 'silent' }), port: 0 });
}, 120_000);

afterAll(async () => {
  await web?.close();
  await repo?.cleanup();
  await h?.teardown();
});

const expectRepositoryLookup = () => repositoryOnGithub('acme', 'infra', repo.cloneUrl);

const TOOLS = ['list_projects', 'get_status', 'list_runs', 'get_run', 'start_plan', 'start_drift_check', 'request_apply', 'request_destroy'];

describe.each([
  ['stdio', () => connectOverStdio({ address: h.env.address, taskQueue: h.taskQueue })],
  ['HTTP', () => connectOverHttp(web.port, TOKEN)],
] as const)('over %s', (_transport, connect) => {
  it('lists the tools with typed input schemas', async () => {
    const client = await connect();
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([...TOOLS].sort());
      const list = tools.find((t) => t.name === 'list_projects')!;
      expect(list.inputSchema).toMatchObject({ type: 'object', required: ['repo'], properties: { repo: { type: 'string' } } });
      expect(list.annotations?.readOnlyHint).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('list_projects: the projects at the default branch, in dependency order, with the outputs each edge carries', async () => {
    const github = expectRepositoryLookup();
    const client = await connect();
    try {
      const result = await client.callTool({ name: 'list_projects', arguments: { repo: 'acme/infra' } });
      expect(result.isError).toBeFalsy();
      const graph = JSON.parse(text(result));
      expect(result.structuredContent).toEqual(graph);
      expect(graph).toEqual({
        repository: 'acme/infra',
        defaultBranch: 'main',
        sha: await repo.head(),
        projects: [
          { name: 'network', dir: 'infra/network', workspace: 'default', terraform: 'terraform', apply: 'beforeMerge', dependsOn: [], dependents: ['app'] },
          {
            name: 'app',
            dir: 'infra/app',
            workspace: 'default',
            terraform: 'terraform',
            apply: 'afterMerge',
            dependsOn: ['network'],
            dependents: ['dns'],
            drift: { schedule: '0 6 * * 1-5', reconcile: false },
          },
          { name: 'dns', dir: 'infra/dns', workspace: 'prod', terraform: 'terraform', apply: 'beforeMerge', dependsOn: ['app'], dependents: [] },
        ],
        edges: [
          { from: 'network', to: 'app', outputs: [{ output: 'vpc_id', variable: 'vpc_id' }, { output: 'subnet_id', variable: 'subnet' }] },
          { from: 'app', to: 'dns', outputs: [] },
        ],
      });
      github.assertNoUnexpected();
    } finally {
      await client.close();
    }
  });

  it('a bad argument or an unknown repository is a one-line tool error, never a stack trace', async () => {
    new GithubMock('acme', 'nope');
    const github = nock('https://api.github.com').get('/repos/acme/nope/installation').reply(404, { message: 'Not Found' });
    const client = await connect();
    try {
      const bad = await client.callTool({ name: 'list_projects', arguments: { repo: 'not a repo' } });
      expect(bad.isError).toBe(true);
      expect(text(bad)).toMatch(/expected owner\/name/);

      const unknown = await client.callTool({ name: 'list_projects', arguments: { repo: 'acme/nope' } });
      expect(unknown).toEqual({ isError: true, content: [{ type: 'text', text: 'acme/nope: no such repository, or the GitHub App is not installed on it' }] });
      expect(github.isDone()).toBe(true);
    } finally {
      await client.close();
    }
  });
});

describe('terrapin mcp on stdio', () => {
  it('ends by itself, exit 0, when the agent closes its stdin', async () => {
    const r = await execa(process.execPath, [join(ROOT, 'bin', 'terrapin.mjs'), 'mcp'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', TEMPORAL_ADDRESS: h.env.address, TEMPORAL_TASK_QUEUE: h.taskQueue },
      extendEnv: false,
      input: '',
      reject: false,
      timeout: 30_000,
    });
    expect({ exitCode: r.exitCode, timedOut: r.timedOut, stdout: r.stdout, stderr: r.stderr }).toEqual({ exitCode: 0, timedOut: false, stdout: '', stderr: '' });
  });
});

describe('the HTTP endpoint', () => {
  const post = (headers: Record<string, string>, port = web.port) =>
    fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });

  it('refuses a wrong or missing token with 401, and the SDK client cannot connect with one', async () => {
    const attempts: Array<Record<string, string>> = [{ authorization: `Bearer ${TOKEN}x` }, { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, { authorization: `Basic ${TOKEN}` }, {}];
    for (const headers of attempts) {
      const res = await post(headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="terrapin"');
      expect(await res.text()).toBe('missing or wrong bearer token\n');
    }
    const client = new Client({ name: 'terrapin-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${web.port}/mcp`), { requestInit: { headers: { authorization: 'Bearer wrong-token' } } });
    await expect(client.connect(transport)).rejects.toThrow(/missing or wrong bearer token/);
  });

  it('is off without TERRAPIN_MCP_TOKEN: /mcp is as unknown as any other path', async () => {
    const off = await startWebhookServer({ config: h.config, client: h.env.client, logger: pino({ level: 'silent' }), port: 0 });
    try {
      const res = await post({ authorization: `Bearer ${TOKEN}` }, off.port);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe('not found\n');
    } finally {
      await off.close();
    }
  });

  it('answers only POST: there are no sessions to resume or end', async () => {
    const res = await fetch(`http://127.0.0.1:${web.port}/mcp`, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});
