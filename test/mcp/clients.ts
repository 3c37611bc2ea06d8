// The SDK's own MCP client over each transport, and the GitHub answers that resolve a repository.
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { GithubMock } from '../helpers/github-mock.ts';

export const ROOT = join(import.meta.dirname, '..', '..');

export async function connectOverHttp(port: number, token: string): Promise<Client> {
  const client = new Client({ name: 'terrapin-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

/** `node bin/terrapin.mjs mcp` as an agent starts it: a subprocess with the server's Temporal settings. */
export async function connectOverStdio(temporal: { address: string; taskQueue: string }): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(ROOT, 'bin', 'terrapin.mjs'), 'mcp'],
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', TEMPORAL_ADDRESS: temporal.address, TEMPORAL_TASK_QUEUE: temporal.taskQueue },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'terrapin-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

/** The first text content of a tool's answer. */
export const text = (result: Awaited<ReturnType<Client['callTool']>>): string => (result.content as Array<{ type: string; text: string }>)[0]!.text;

/** A tool's JSON answer; fails on a tool error, showing it. */
export function json(result: Awaited<ReturnType<Client['callTool']>>): any {
  if (result.isError) throw new Error(`tool error: ${text(result)}`);
  return JSON.parse(text(result));
}

/**
 * The worker's two questions about owner/name (where the App is installed, the repository itself), each
 * expected `times` times (once per tool call that names the repository). `assertNoUnexpected()` on the
 * mock then says they all happened and nothing else did.
 */
export function repositoryOnGithub(owner: string, name: string, cloneUrl: string, times = 1): GithubMock {
  const gh = new GithubMock(owner, name);
  for (let i = 0; i < times; i++) gh.repository(cloneUrl, 4242);
  return gh;
}
