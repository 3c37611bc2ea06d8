// `terrapin mcp`: Terrapin's MCP server on stdin/stdout, for an agent that starts it (Claude Code, Cursor, …).
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('mcp')
    .description('serve the MCP tools for AI agents on stdio (list_projects, get_status, list_runs, get_run, start_plan, start_drift_check, request_apply, request_destroy)')
    .addHelpText(
      'after',
      `
Stdout carries the protocol only; errors go to stderr. No tool approves anything: request_apply and
request_destroy return the GitHub issue where a person allowed by the project's rules comments /approve.
A Terrapin worker must be running (npm start, or npm run worker): it reads the repositories.

An agent starts it as a subprocess, e.g. in .mcp.json:
  { "mcpServers": { "terrapin": {
      "command": "node", "args": ["/path/to/terrapin/bin/terrapin.mjs", "mcp"],
      "env": { "TEMPORAL_ADDRESS": "temporal.internal:7233" } } } }

Examples:
  $ npx terrapin mcp
  $ TEMPORAL_ADDRESS=temporal.internal:7233 TEMPORAL_NAMESPACE=terrapin npx terrapin mcp`,
    )
    .action(async () => {
      const [{ connectOperator, githubCredentials, githubWebUrl }, { serveStdio }] = await Promise.all([import('../../operator/connect.ts'), import('../../mcp/stdio.ts')]);
      const conn = await connectOperator();
      try {
        const github = githubCredentials();
        await serveStdio({
          client: conn.client,
          taskQueue: conn.temporal.taskQueue,
          dataDir: conn.dataDir,
          webUrl: githubWebUrl(),
          ...(github ? { github } : {}),
        });
      } finally {
        await conn.close();
      }
    });
}
