// The loopback HTTP server: every request goes through one dispatch function (routing, credentials, faults)
// and is recorded once answered.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultInjector } from './faults.ts';
import { error, send, type Reply, type Request, type Route } from './http.ts';
import type { FaultKind, RecordedCall } from './types.ts';

interface Answer {
  reply: Reply;
  route?: Route;
  fault?: FaultKind;
}

export class Dispatcher {
  private readonly routes: Route[];
  private readonly tokens: ReadonlySet<string>;
  private readonly faults: FaultInjector;

  constructor(routes: Route[], tokens: ReadonlySet<string>, faults: FaultInjector) {
    this.routes = routes;
    this.tokens = tokens;
    this.faults = faults;
  }

  /** A known route's call, with a fault when one is due: 502-after makes the change, then fails. */
  dispatch(req: Request): Answer {
    const kind = this.faults.draw();
    const route = this.find(req);
    if (kind && route && kind !== '502-after') return { route, reply: this.faults.reply(kind), fault: kind };
    const answer = this.dispatchClean(req);
    return kind && answer.route ? { ...answer, reply: this.faults.reply(kind), fault: kind } : answer;
  }

  private find(req: Request): Route | undefined {
    return this.routes.find((r) => r.method === req.method && r.pattern.test(req.path));
  }

  private dispatchClean(req: Request): Answer {
    const route = this.find(req);
    if (!route) return { reply: error(404, 'Not Found') };
    req.params = route.pattern.exec(req.path)!.slice(1);
    const [scheme, credential] = (req.auth ?? '').split(/\s+/, 2);
    if (route.auth === 'jwt') {
      if (scheme?.toLowerCase() !== 'bearer' || (credential ?? '').split('.').length !== 3) {
        return { route, reply: error(401, 'A JSON web token could not be decoded') };
      }
    } else if (!credential || !this.tokens.has(credential)) {
      return { route, reply: error(401, 'Bad credentials') };
    }
    return { route, reply: route.handle(req) };
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function handleHttp(req: IncomingMessage, res: ServerResponse, dispatcher: Dispatcher, record: (call: RecordedCall) => void): Promise<void> {
  const raw = await readBody(req);
  const url = new URL(req.url ?? '/', 'http://standin');
  // REST lives under /api/v3 and GraphQL at /api/graphql on GitHub Enterprise; accept api.github.com's paths too.
  const path = url.pathname.replace(/^\/api\/v3(?=\/)/, '').replace(/^\/api\/graphql$/, '/graphql');
  const method = req.method ?? 'GET';
  let body: unknown;
  let answer: Answer;
  try {
    body = raw ? JSON.parse(raw) : undefined;
    answer = dispatcher.dispatch({ method, path, query: url.searchParams, body, params: [], auth: req.headers.authorization, origin: `http://${req.headers.host}` });
  } catch {
    body = raw;
    answer = { reply: error(400, 'Problems parsing JSON') };
  }
  const { reply, route, fault } = answer;
  send(res, reply);
  record({
    method,
    path,
    query: Object.fromEntries(url.searchParams),
    body,
    status: reply.status,
    ...(fault ? { fault } : {}),
    route: route?.name,
    response: reply.body,
    at: new Date(),
  });
}

export interface Listening {
  host: string;
  close(): Promise<void>;
}

/** Serves the dispatcher on 127.0.0.1 (port 0: any free one), handing each answered call to `record`. */
export async function listen(port: number, dispatcher: Dispatcher, record: (call: RecordedCall) => void): Promise<Listening> {
  const server = createServer((req, res) => {
    handleHttp(req, res, dispatcher, record).catch((err: unknown) => {
      if (!res.headersSent) send(res, { status: 500, body: { message: String(err) } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
