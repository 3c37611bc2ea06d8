// The MCP server over Streamable HTTP at `/mcp` on the webhook server, behind a bearer token
// (TERRAPIN_MCP_TOKEN). Stateless: every POST gets a fresh server and transport, so any instance behind a
// load balancer answers any request, and nothing is kept between them.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Client } from '@temporalio/client';
import type { ServerConfig } from '../app/config.ts';
import type { Logger } from '../app/logger.ts';
import { createMcpServer, type McpDeps } from './server.ts';

export const MCP_PATH = '/mcp';

/** The tools' view of the webhook server's own settings: its Temporal, data dir and App credentials. */
export function mcpDeps(config: ServerConfig, client: Client): McpDeps {
  const { appId, privateKey, baseUrl } = config.github;
  // https://api.github.com → https://github.com; https://ghe.example/api/v3 → https://ghe.example
  const webUrl = baseUrl === 'https://api.github.com' ? 'https://github.com' : baseUrl.replace(/\/api\/v3\/?$/, '');
  return { client, taskQueue: config.temporal.taskQueue, dataDir: config.dataDir, webUrl, github: { appId, privateKey, baseUrl } };
}

/** Compared as digests, so neither the length nor any prefix of the token shows in the timing. */
export function tokenMatches(given: string, token: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** The token of an `Authorization: Bearer <token>` header; undefined for any other header or none. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header ? /^Bearer +(\S+)\s*$/i.exec(header)?.[1] : undefined;
}

export function mcpHttpHandler(opts: { token: string; deps: McpDeps; logger: Logger }) {
  const { token, deps, logger } = opts;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const given = bearerToken(req);
    if (given === undefined || !tokenMatches(given, token)) {
      if (given !== undefined) logger.warn({ remote: req.socket.remoteAddress }, 'MCP request with a wrong token; refused');
      return refuse(req, res, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="terrapin"' });
    }
    // Stateless: no session to resume (GET) or end (DELETE).
    if (req.method !== 'POST') return refuse(req, res, 405, 'use POST', { allow: 'POST' });
    const server = createMcpServer(deps);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.once('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
}

/** Answers before the body is read: the connection closes, so the rest is never read. */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close', ...headers }).end(`${text}\n`, () => req.destroy());
}
