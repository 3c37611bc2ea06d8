// Terrapin's tools for AI agents, over MCP: read the configured projects and the run records, start plans
// and drift checks, and request applies and destroys. No tool approves anything: a request opens (or finds)
// the GitHub issue where a person the project's rules allow comments `/approve`, and returns its link and
// the id of the run to watch. Served over stdio (`terrapin mcp`, mcp/stdio.ts) and Streamable HTTP at
// `/mcp` on the webhook server (mcp/http.ts).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { failureMessage, listProjects } from '../operator/projects.ts';

export interface McpDeps {
  client: Client;
  taskQueue: string;
}

const VERSION = '0.1.0';

/** owner/name, as GitHub allows them. */
const repo = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/, 'expected owner/name, e.g. acme/infra')
  .describe('The repository, as owner/name (e.g. acme/infra)');

/** A tool's answer: the JSON for the agent to read (also as structured content). */
function answer(value: object): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: value as Record<string, unknown> };
}

/** A failure the agent can act on, in one line: never a stack trace. */
function refusal(err: unknown): CallToolResult {
  const line = failureMessage(err).split('\n')[0]!.trim() || 'failed';
  return { isError: true, content: [{ type: 'text', text: line }] };
}

async function guarded(work: () => Promise<object>): Promise<CallToolResult> {
  try {
    return answer(await work());
  } catch (err) {
    return refusal(err);
  }
}

export function createMcpServer(deps: McpDeps): McpServer {
  const server = new McpServer(
    { name: 'terrapin', version: VERSION },
    {
      instructions:
        'Terrapin plans and applies Terraform projects from GitHub. Start with list_projects. Plans and drift checks ' +
        'start at once; applies and destroys only open a GitHub issue where a person with the right permissions ' +
        'approves with /approve: you can never approve, only watch the returned run id.',
    },
  );

  server.registerTool(
    'list_projects',
    {
      title: 'List projects',
      description:
        "The projects configured in the repository's .terrapin.yml at its default branch, in dependency order: dir, " +
        'workspace, apply mode (beforeMerge: applied on the PR; afterMerge: deployed after merge), drift schedule, ' +
        'what each depends on and is depended on by, and the dependency edges with the outputs passed along them.',
      inputSchema: { repo },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ repo }) => guarded(() => listProjects(deps, repo)),
  );

  return server;
}
