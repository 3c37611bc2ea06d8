// `terrapin mcp`: the MCP server over stdin/stdout, for an agent that starts it as a subprocess. Stdout
// carries the protocol alone: nothing else may write to it (logs go to stderr).
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMcpServer, type McpDeps } from './server.ts';

/** Serves until the agent closes stdin (or the process is stopped). */
export async function serveStdio(deps: McpDeps): Promise<void> {
  const server = createMcpServer(deps);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = resolve;
  });
  await server.connect(transport);
  // The SDK's stdio transport does not notice the end of its input. An agent that goes away closes the
  // server, so the command ends cleanly (exit 0) rather than with its work unsettled.
  process.stdin.once('end', () => void server.close());
  await closed;
}
