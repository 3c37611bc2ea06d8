// `terrapin mcp`: Terrapin's MCP server on stdin/stdout, for an agent that starts it (Claude Code, Cursor, …).
import type { Command } from 'commander';
import { Connection, Client } from '@temporalio/client';
import { temporalSettings } from '../../app/config.ts';
import { tlsConfig } from '../../app/temporal.ts';
import { serveStdio } from '../../mcp/stdio.ts';
import { unavailable } from '../output.ts';

export function register(program: Command): void {
  program
    .command('mcp')
    .description('serve the MCP tools (list_projects, get_status, list_runs, get_run, start_plan, start_drift_check, request_apply, request_destroy) on stdio')
    .addHelpText(
      'after',
      `
Stdout carries the protocol only; errors go to stderr. An agent starts it as a subprocess, e.g. in .mcp.json:
  { "mcpServers": { "terrapin": { "command": "npx", "args": ["terrapin", "mcp"], "env": { "TEMPORAL_ADDRESS": "temporal:7233" } } } }

Examples:
  $ npx terrapin mcp
  $ TEMPORAL_ADDRESS=temporal.internal:7233 TEMPORAL_NAMESPACE=terrapin npx terrapin mcp`,
    )
    .action(async () => {
      const settings = temporalSettings(process.env);
      // No TEMPORAL_ADDRESS: the embedded server that `npm start` runs on this machine.
      const address = settings.address ?? `127.0.0.1:${process.env.TERRAPIN_EMBEDDED_TEMPORAL_PORT || 7233}`;
      let connection: Connection;
      try {
        connection = await Connection.connect({ address, tls: tlsConfig(settings), apiKey: settings.apiKey, connectTimeout: '10 seconds' });
      } catch (err) {
        throw unavailable(`Temporal at ${address} is unreachable (${(err as Error).message}); is Terrapin running (npm start), or TEMPORAL_ADDRESS set?`);
      }
      try {
        await serveStdio({ client: new Client({ connection, namespace: settings.namespace }), taskQueue: settings.taskQueue });
      } finally {
        await connection.close();
      }
    });
}
