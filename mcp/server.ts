// Terrapin's tools for AI agents, over MCP: read the configured projects and the run records, start plans
// and drift checks, and request applies and destroys. No tool approves anything: a request opens the
// GitHub issue where a person the project's rules allow comments `/approve`, and returns its link and the
// id of the run to watch. Served over stdio (`terrapin mcp`, mcp/stdio.ts) and Streamable HTTP at
// `/mcp` on the webhook server (mcp/http.ts).
import { readFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { parseSince } from '../cli/output.ts';
import type { githubCredentials } from '../operator/connect.ts';
import { openDriftIssues } from '../operator/github.ts';
import { failureMessage, listProjects } from '../operator/projects.ts';
import { RUN_KINDS, listRuns } from '../operator/records.ts';
import { repositoryStatus } from '../operator/status.ts';
import type { RunKind } from '../shared/runs.ts';
import { requestApproval, startRun } from './requests.ts';
import { runView } from './run-view.ts';

export interface McpDeps {
  client: Client;
  taskQueue: string;
  /** Where this machine's runs keep their files: get_run reads a whole log from here when it is shared with the worker. */
  dataDir: string;
  /** https://github.com or the GHE web URL, for links. */
  webUrl?: string;
  /** The App's credentials, when here: get_status then says which drift issues are open. */
  github?: NonNullable<ReturnType<typeof githubCredentials>>;
  /** How long request_apply and request_destroy wait for the approval issue (default APPROVAL_WAIT_MS). */
  approvalWaitMs?: number;
}

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** owner/name, as GitHub allows them. */
const repo = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/, 'expected owner/name, e.g. acme/infra')
  .describe('The repository, as owner/name (e.g. acme/infra)');

const project = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a project name as list_projects gives it')
  .max(100)
  .describe('The project, by name (see list_projects)');

const since = z
  .string()
  .regex(/^(?:[1-9][0-9]*[mhdw]|\d{4}-\d{2}-\d{2}(?:T[0-9:.]+Z?)?)$/, 'expected a duration (30d, 12h, 45m, 2w) or a date (2026-01-31)')
  .describe('Only runs started since: a duration (30d, 12h, 45m, 2w) or a date (2026-01-31)');

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

  server.registerTool(
    'get_status',
    {
      title: 'Project status',
      description:
        'Where each project stands (or the one named): the last apply or deploy (when, by whom, approved by, revision, ' +
        'outcome), plans waiting for approval on open PRs, the lock holder and the line behind it, the deploy queue, ' +
        'and drift (the last check, the open drift issue). Each project also has a one-line summary.',
      inputSchema: { repo, project: project.optional() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ repo, project }) =>
      guarded(() => {
        const creds = deps.github;
        return repositoryStatus(deps.client, {
          repository: repo,
          ...(project ? { project } : {}),
          ...(deps.webUrl ? { webUrl: deps.webUrl } : {}),
          ...(creds ? { driftIssues: (repository: string) => openDriftIssues(creds, repository) } : {}),
        });
      }),
  );

  server.registerTool(
    'list_runs',
    {
      title: 'List runs',
      description:
        'Run records, newest first: every plan, apply, rollback, destroy and drift check of the repository (or one project), ' +
        'whatever started it (a PR, a merge, a push, a schedule, an operator): kind, trigger, PR, actor, approvers, revision, ' +
        'outcome, resource counts. Give a run id to get_run for its result and log.',
      inputSchema: {
        repo,
        project: project.optional(),
        kind: z.enum(RUN_KINDS as [RunKind, ...RunKind[]]).optional().describe('Only runs of this kind'),
        since: since.optional(),
        limit: z.number().int().min(1).max(500).default(20).describe('At most this many runs (default 20)'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ repo, project, kind, since, limit }) =>
      guarded(async () => {
        const runs = await listRuns(
          deps.client,
          { repository: repo, ...(project ? { project } : {}), ...(kind ? { kinds: [kind] } : {}), ...(since ? { since: parseSince(since) } : {}) },
          limit,
        );
        return { runs };
      }),
  );

  server.registerTool(
    'get_run',
    {
      title: 'Get a run',
      description:
        "A run by id (from list_runs, start_plan, start_drift_check, request_apply or request_destroy): its record, result and the " +
        "tail of its scrubbed terraform log. For an operator's run: its phase (planning, waiting-approval, applying, done), the " +
        'approval issue, who approved, and the project runs it made.',
      inputSchema: {
        runId: z.string().min(1).max(500).describe('The run id: run:…, operator:… or drift-run:…'),
        tailLines: z.number().int().min(1).max(2000).default(100).describe('How many lines of the log to return from its end (default 100)'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ runId, tailLines }) => guarded(() => runView(deps, runId, tailLines)),
  );

  server.registerTool(
    'start_plan',
    {
      title: 'Start a plan',
      description:
        "Plans the project at the repository's default branch head, through the same per-project lock and policy " +
        'checks as a merge. Returns at once with the run id; follow it with get_run. Applies nothing.',
      inputSchema: { repo, project },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ repo, project }) => guarded(async () => ({ runId: (await startRun(deps, repo, project, 'plan')).workflowId, kind: 'plan', status: 'started' })),
  );

  server.registerTool(
    'start_drift_check',
    {
      title: 'Check for drift',
      description:
        'Checks the project at the default branch for drift now (as /drift does): a running check of the same project is ' +
        'followed rather than started twice. Drift found opens or updates the issue "Drift detected: <project>". Returns the run id.',
      inputSchema: { repo, project },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    ({ repo, project }) => guarded(async () => ({ runId: (await startRun(deps, repo, project, 'drift')).workflowId, kind: 'drift', status: 'started' })),
  );

  server.registerTool(
    'request_apply',
    {
      title: 'Request an apply',
      description:
        'Plans the project at the default branch and opens the GitHub issue "Apply requested: <project>" with the plan. ' +
        'Nothing is applied until a person whom the project\'s rules allow comments /approve there: this tool cannot ' +
        'approve. Returns the issue link and the run id to watch (get_run); if the plan takes longer than about 40 s, ' +
        'the run id alone (status planning), and get_run shows the link once the issue is open.',
      inputSchema: { repo, project },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ repo, project }) => guarded(() => requestApproval(deps, repo, project, 'apply')),
  );

  server.registerTool(
    'request_destroy',
    {
      title: 'Request a destroy',
      description:
        'Plans a destroy of the project (with withDependents, also of every project that depends on it, dependents first) ' +
        'and opens the GitHub issue "Destroy requested: <project>". Nothing is destroyed until enough people whom the ' +
        "project's rules allow (destroyNeeds) comment /approve there: this tool cannot approve. Refused, naming them, when " +
        'other projects depend on it and withDependents is not set. Returns the issue link and the run id to watch ' +
        '(or, while a long plan runs, the run id alone: get_run shows the link once the issue is open).',
      inputSchema: {
        repo,
        project,
        withDependents: z.boolean().default(false).describe('Also destroy every project that depends on this one (dependents first)'),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    ({ repo, project, withDependents }) => guarded(() => requestApproval(deps, repo, project, 'destroy', withDependents)),
  );

  return server;
}
