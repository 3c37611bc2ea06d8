// Replies, requests and routes as the stand-in's route families see them, and GitHub's error shapes.
import type { ServerResponse } from 'node:http';

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  params: string[];
  auth: string | undefined;
  origin: string;
}

export interface Route {
  method: string;
  name: string;
  pattern: RegExp;
  /** Which credential the route needs: the app's JWT, an installation token. */
  auth: 'jwt' | 'token';
  handle(req: Request): Reply;
}

/** A route named like "POST /repos/:owner/:repo/check-runs": the method is the name's first word. */
export function route(name: string, pattern: RegExp, handle: (req: Request) => Reply, auth: Route['auth'] = 'token'): Route {
  return { method: name.split(' ')[0]!, name, pattern, auth, handle };
}

export const error = (status: number, message: string, extra: Record<string, unknown> = {}): Reply => ({
  status,
  body: { message, documentation_url: 'https://docs.github.com/rest', status: String(status), ...extra },
});

export const notFound = (): Reply => error(404, 'Not Found');

export const unprocessable = (message: string, field?: string): Reply =>
  error(422, message, field ? { errors: [{ resource: 'Request', field, code: 'invalid', message }] } : {});

export function send(res: ServerResponse, reply: Reply): void {
  const payload = reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': 'application/json; charset=utf-8',
    'x-github-media-type': 'github.v3; format=json',
    'x-ratelimit-limit': '5000',
    'x-ratelimit-remaining': '4999',
    ...reply.headers,
  });
  res.end(payload);
}
