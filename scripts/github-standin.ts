// A loopback stand-in for the parts of the GitHub REST and GraphQL APIs that Terrapin uses, for the demo,
// benchmarks and tests. It keeps state (comments, reactions, check runs), answers with GitHub's shapes and
// status codes, validates what GitHub validates for these routes, and records every call.
// Every request goes through one dispatch function, where faults are injected on request: 502s (half of
// them after the change was made, as when a proxy drops GitHub's answer), 403 secondary rate limits and
// 429s, both with retry-after.
// Tests hold it to the calls they expect, as strictly as their nock mocks: `expectExactly` lists every call
// that may come (route, path, body, how many times), `settled` waits until each expected one came, and
// `assertExactly` fails on any call missing, any call beyond its count and any call nothing expected.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Permission = 'admin' | 'write' | 'read' | 'none';

export interface RecordedCall {
  method: string;
  /** Path without the /api/v3 prefix, e.g. /repos/acme/infra/issues/1/comments. */
  path: string;
  /** The fault injected into this call, if any. */
  fault?: FaultKind;
  query: Record<string, string>;
  /** Parsed JSON request body, if any. */
  body: unknown;
  status: number;
  /** The matched route, e.g. "POST /repos/:owner/:repo/issues/:number/comments"; undefined when unknown. */
  route?: string;
  /** Parsed JSON response body. */
  response: unknown;
  at: Date;
}

export interface StandinUser {
  login: string;
  id: number;
  node_id: string;
  type: 'User' | 'Bot';
}

export interface StoredComment {
  id: number;
  node_id: string;
  owner: string;
  repo: string;
  issueNumber: number;
  body: string;
  user: StandinUser;
  created_at: string;
  updated_at: string;
  /** Lower-case classifier once minimized (GraphQL minimizedReason), e.g. "outdated". */
  minimizedReason?: string;
  reactions: { id: number; content: string; user: StandinUser }[];
}

export interface StoredCheckRun {
  id: number;
  node_id: string;
  owner: string;
  repo: string;
  head_sha: string;
  name: string;
  status: string;
  conclusion: string | null;
  started_at: string;
  completed_at: string | null;
  external_id: string | null;
  details_url: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  actions: { label: string; description: string; identifier: string }[];
}

/** One kind of call a test expects: matched by route, then path and body; `times` exactly 1 by default. */
export interface CallExpectation {
  /** The route as in RecordedCall.route, e.g. "POST /repos/:owner/:repo/issues/:issue_number/comments". */
  route: string;
  /** Only calls to this path (string: equal; RegExp: matching), e.g. /repos/acme/infra/issues/7/comments. */
  path?: string | RegExp;
  /** Only calls whose parsed request body passes. */
  body?: (body: any) => boolean;
  /** How many such calls: exactly this many (default 1), or between min (default 0) and max (default unbounded). */
  times?: number | { min?: number; max?: number };
  /** Names the expectation in reports; the route and path by default. */
  label?: string;
}

export interface ExpectOptions {
  /**
   * Installation tokens are auth plumbing, fetched per worker and cached: any number is allowed unless
   * false (then list them like any other call).
   */
  anyTokens?: boolean;
  /**
   * Calls answered with an injected fault that changed nothing (502-before, 403, 429) are retried by the
   * client: they count against no expectation unless true. A 502-after made its change and always counts.
   */
  countFaultsThatChangedNothing?: boolean;
}

/** What `verifyCalls` found: missing and surplus calls per expectation, and calls nothing expected. */
export interface CallReport {
  missing: string[];
  surplus: string[];
  unexpected: string[];
  /** Calls counted per expectation label, in the order the expectations were given. */
  counts: Array<{ label: string; count: number }>;
}

export const INSTALLATION_TOKEN_ROUTE = 'POST /app/installations/:installation_id/access_tokens';

export interface GithubStandin {
  /** REST base URL: http://127.0.0.1:PORT/api/v3 (GraphQL at /api/graphql, as on GitHub Enterprise). */
  baseUrl: string;
  /** host:port, for GHE_HOST. */
  host: string;
  calls: RecordedCall[];
  /** Called after each response; returns an unsubscribe function. */
  onCall(fn: (call: RecordedCall) => void): () => void;
  setPermission(login: string, permission: Permission): void;
  /** Turns fault injection on (or off with undefined) from the next call. */
  setFaults(faults: FaultOptions | undefined): void;
  setPullRequest(owner: string, repo: string, number: number, pr: Record<string, unknown>): void;
  /** A comment written by a person on GitHub (so webhooks can reference a comment the stand-in knows). */
  addIssueComment(owner: string, repo: string, number: number, comment: { body: string; login: string }): StoredComment;
  comments(owner: string, repo: string, issueNumber?: number): StoredComment[];
  checkRuns(owner: string, repo: string): StoredCheckRun[];
  /**
   * From now on every call must match one of these expectations (calls already made are not looked at):
   * `assertExactly` fails on a call missing, one beyond its count, or one nothing expected. Called again,
   * it adds expectations to the current set without resetting what was counted.
   */
  expectExactly(expectations: CallExpectation[], opts?: ExpectOptions): void;
  /** The calls since `expectExactly`, measured against the expectations. */
  verifyCalls(): CallReport;
  /** Fails (throws, naming every problem) unless `verifyCalls` found nothing missing, surplus or unexpected. */
  assertExactly(): void;
  /** Waits until every expectation got at least its minimum count; throws with the report on timeout. */
  settled(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StandinOptions {
  /** Login of the app's bot user, the author of every comment made with an installation token. */
  botLogin?: string;
  port?: number;
  faults?: FaultOptions;
}

export type FaultKind = '502-before' | '502-after' | '403-rate-limit' | '429';

export interface FaultOptions {
  /** Share of API calls answered with a fault, 0..1. */
  rate: number;
  /** Seed of the fault sequence, so a failing run can be repeated. */
  seed?: number;
  /** Seconds in retry-after of rate-limit faults (default 1). */
  retryAfter?: number;
}

/** mulberry32: a small seeded generator; Math.random cannot be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REACTIONS = new Set(['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes']);
const CHECK_STATUSES = new Set(['queued', 'in_progress', 'completed', 'waiting', 'requested', 'pending']);
const CHECK_CONCLUSIONS = new Set(['action_required', 'cancelled', 'failure', 'neutral', 'success', 'skipped', 'stale', 'timed_out']);
const MAX_COMMENT_CHARS = 65536;
const MAX_CHECK_TEXT_CHARS = 65535;

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  params: string[];
  auth: string | undefined;
  origin: string;
}

interface Route {
  method: string;
  name: string;
  pattern: RegExp;
  /** Which credential the route needs: the app's JWT, an installation token. */
  auth: 'jwt' | 'token';
  handle(req: Request): Reply;
}

const error = (status: number, message: string, extra: Record<string, unknown> = {}): Reply => ({
  status,
  body: { message, documentation_url: 'https://docs.github.com/rest', status: String(status), ...extra },
});

const unprocessable = (message: string, field?: string): Reply =>
  error(422, message, field ? { errors: [{ resource: 'Request', field, code: 'invalid', message }] } : {});

export async function startGithubStandin(opts: StandinOptions = {}): Promise<GithubStandin> {
  let nextId = 1000;
  const newId = () => ++nextId;
  const nodeId = (prefix: string, id: number) => `${prefix}_${Buffer.from(`standin:${id}`).toString('base64url')}`;
  const userCache = new Map<string, StandinUser>();
  const user = (login: string): StandinUser => {
    let u = userCache.get(login);
    if (!u) {
      const id = newId();
      u = { login, id, node_id: nodeId('U', id), type: login.endsWith('[bot]') ? 'Bot' : 'User' };
      userCache.set(login, u);
    }
    return u;
  };
  const bot = user(opts.botLogin ?? 'terrapin[bot]');

  const permissions = new Map<string, Permission>();
  const pulls = new Map<string, Record<string, unknown>>();
  /** Issues and pull requests that exist, for the issue routes (which 404 on anything else). */
  const issues = new Set<string>();
  const comments = new Map<number, StoredComment>();
  const checkRuns = new Map<number, StoredCheckRun>();
  const tokens = new Set<string>();
  const calls: RecordedCall[] = [];
  const listeners = new Set<(call: RecordedCall) => void>();
  const repoKey = (owner: string, repo: string) => `${owner}/${repo}`.toLowerCase();
  const issueKey = (owner: string, repo: string, n: number | string) => `${repoKey(owner, repo)}#${n}`;
  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

  const commentJson = (c: StoredComment, origin: string) => ({
    id: c.id,
    node_id: c.node_id,
    url: `${origin}/api/v3/repos/${c.owner}/${c.repo}/issues/comments/${c.id}`,
    html_url: `${origin}/${c.owner}/${c.repo}/pull/${c.issueNumber}#issuecomment-${c.id}`,
    issue_url: `${origin}/api/v3/repos/${c.owner}/${c.repo}/issues/${c.issueNumber}`,
    body: c.body,
    user: c.user,
    created_at: c.created_at,
    updated_at: c.updated_at,
    author_association: c.user.type === 'Bot' ? 'NONE' : 'MEMBER',
    reactions: { total_count: c.reactions.length },
  });

  const checkRunJson = (r: StoredCheckRun, origin: string) => ({
    ...r,
    owner: undefined,
    repo: undefined,
    url: `${origin}/api/v3/repos/${r.owner}/${r.repo}/check-runs/${r.id}`,
    html_url: `${origin}/${r.owner}/${r.repo}/runs/${r.id}`,
    app: { id: 1, slug: bot.login.replace(/\[bot\]$/, ''), name: 'Terrapin' },
  });

  /** Applies a create/update body to a check run the way GitHub does; returns an error reply if invalid. */
  const applyCheckRunBody = (run: StoredCheckRun, body: Record<string, unknown>): Reply | undefined => {
    if (body.status !== undefined && !CHECK_STATUSES.has(String(body.status))) return unprocessable(`Invalid status: ${String(body.status)}`, 'status');
    if (body.conclusion !== undefined && body.conclusion !== null && !CHECK_CONCLUSIONS.has(String(body.conclusion))) {
      return unprocessable(`Invalid conclusion: ${String(body.conclusion)}`, 'conclusion');
    }
    if (body.status === 'completed' && !body.conclusion) return unprocessable('Conclusion is required when status is completed', 'conclusion');
    const output = body.output as Record<string, unknown> | undefined;
    if (output) {
      if (typeof output.title !== 'string' || typeof output.summary !== 'string') return unprocessable('output requires title and summary', 'output');
      for (const key of ['summary', 'text'] as const) {
        const text = output[key];
        if (typeof text === 'string' && text.length > MAX_CHECK_TEXT_CHARS) {
          return unprocessable(`output.${key} is too long (maximum is ${MAX_CHECK_TEXT_CHARS} characters)`, `output.${key}`);
        }
      }
    }
    const actions = body.actions as { label?: string; description?: string; identifier?: string }[] | undefined;
    if (actions) {
      if (actions.length > 3) return unprocessable('Only 3 actions are allowed', 'actions');
      for (const a of actions) {
        if (!a.label || a.label.length > 20) return unprocessable('action label must be 1-20 characters', 'actions');
        if (!a.description || a.description.length > 40) return unprocessable('action description must be 1-40 characters', 'actions');
        if (!a.identifier || a.identifier.length > 20) return unprocessable('action identifier must be 1-20 characters', 'actions');
      }
    }
    if (typeof body.name === 'string') run.name = body.name;
    if (body.status !== undefined) run.status = String(body.status);
    if (body.conclusion) {
      run.conclusion = String(body.conclusion);
      run.status = 'completed';
      run.completed_at = typeof body.completed_at === 'string' ? body.completed_at : now();
    }
    if (typeof body.external_id === 'string') run.external_id = body.external_id;
    if (typeof body.details_url === 'string') run.details_url = body.details_url;
    if (output) run.output = { title: String(output.title), summary: String(output.summary), text: typeof output.text === 'string' ? output.text : null };
    if (actions) run.actions = actions as StoredCheckRun['actions'];
    return undefined;
  };

  const findComment = (owner: string, repo: string, id: string) => {
    const c = comments.get(Number(id));
    return c && repoKey(c.owner, c.repo) === repoKey(owner, repo) ? c : undefined;
  };

  const routes: Route[] = [
    {
      method: 'POST',
      name: 'POST /app/installations/:installation_id/access_tokens',
      pattern: /^\/app\/installations\/(\d+)\/access_tokens$/,
      auth: 'jwt',
      handle: () => {
        const token = `ghs_${randomBytes(18).toString('hex')}`;
        tokens.add(token);
        const expires = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        return {
          status: 201,
          body: {
            token,
            expires_at: expires,
            permissions: { checks: 'write', contents: 'read', issues: 'write', pull_requests: 'write', metadata: 'read' },
            repository_selection: 'all',
          },
        };
      },
    },
    {
      method: 'GET',
      name: 'GET /repos/:owner/:repo/pulls/:pull_number',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/,
      auth: 'token',
      handle: ({ params: [o, r, n] }) => {
        const pr = pulls.get(issueKey(o!, r!, n!));
        return pr ? { status: 200, body: pr } : error(404, 'Not Found');
      },
    },
    {
      method: 'GET',
      name: 'GET /repos/:owner/:repo/pulls/:pull_number/commits',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/commits$/,
      auth: 'token',
      // The stand-in keeps no commits: a PR's only author is whoever opened it.
      handle: () => ({ status: 200, body: [] }),
    },
    {
      method: 'GET',
      name: 'GET /repos/:owner/:repo/collaborators/:username/permission',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/,
      auth: 'token',
      handle: ({ params: [, , login] }) => {
        const permission = permissions.get(decodeURIComponent(login!).toLowerCase()) ?? 'none';
        return { status: 200, body: { permission, role_name: permission, user: user(decodeURIComponent(login!)) } };
      },
    },
    {
      method: 'POST',
      name: 'POST /repos/:owner/:repo/issues/:issue_number/comments',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      auth: 'token',
      handle: ({ params: [o, r, n], body, origin }) => {
        if (!issues.has(issueKey(o!, r!, n!))) return error(404, 'Not Found');
        const text = (body as { body?: unknown } | undefined)?.body;
        if (typeof text !== 'string' || text === '') return unprocessable('Invalid request.\n\n"body" wasn\'t supplied.', 'body');
        if (text.length > MAX_COMMENT_CHARS) return unprocessable(`Body is too long (maximum is ${MAX_COMMENT_CHARS} characters)`, 'body');
        const comment = storeComment(o!, r!, Number(n), text, bot);
        return { status: 201, body: commentJson(comment, origin) };
      },
    },
    {
      method: 'GET',
      name: 'GET /repos/:owner/:repo/issues/:issue_number/comments',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      auth: 'token',
      handle: ({ params: [o, r, n], query, origin, path }) => {
        if (!issues.has(issueKey(o!, r!, n!))) return error(404, 'Not Found');
        const all = [...comments.values()].filter((c) => issueKey(c.owner, c.repo, c.issueNumber) === issueKey(o!, r!, n!));
        const perPage = Math.min(Math.max(Number(query.get('per_page') ?? 30) || 30, 1), 100);
        const page = Math.max(Number(query.get('page') ?? 1) || 1, 1);
        const lastPage = Math.max(Math.ceil(all.length / perPage), 1);
        const pageUrl = (p: number) => `${origin}/api/v3${path}?per_page=${perPage}&page=${p}`;
        const links = [
          ...(page < lastPage ? [`<${pageUrl(page + 1)}>; rel="next"`, `<${pageUrl(lastPage)}>; rel="last"`] : []),
          ...(page > 1 ? [`<${pageUrl(1)}>; rel="first"`, `<${pageUrl(page - 1)}>; rel="prev"`] : []),
        ];
        return {
          status: 200,
          body: all.slice((page - 1) * perPage, page * perPage).map((c) => commentJson(c, origin)),
          headers: links.length ? { link: links.join(', ') } : {},
        };
      },
    },
    {
      method: 'PATCH',
      name: 'PATCH /repos/:owner/:repo/issues/comments/:comment_id',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/,
      auth: 'token',
      handle: ({ params: [o, r, id], body, origin }) => {
        const comment = findComment(o!, r!, id!);
        if (!comment) return error(404, 'Not Found');
        const text = (body as { body?: unknown } | undefined)?.body;
        if (typeof text !== 'string' || text === '') return unprocessable('Invalid request.\n\n"body" wasn\'t supplied.', 'body');
        if (text.length > MAX_COMMENT_CHARS) return unprocessable(`Body is too long (maximum is ${MAX_COMMENT_CHARS} characters)`, 'body');
        comment.body = text;
        comment.updated_at = now();
        return { status: 200, body: commentJson(comment, origin) };
      },
    },
    {
      method: 'POST',
      name: 'POST /repos/:owner/:repo/issues/comments/:comment_id/reactions',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)\/reactions$/,
      auth: 'token',
      handle: ({ params: [o, r, id], body }) => {
        const comment = findComment(o!, r!, id!);
        if (!comment) return error(404, 'Not Found');
        const content = String((body as { content?: unknown } | undefined)?.content);
        if (!REACTIONS.has(content)) return unprocessable(`Invalid reaction content: ${content}`, 'content');
        const existing = comment.reactions.find((x) => x.content === content && x.user.login === bot.login);
        if (existing) return { status: 200, body: { ...existing, node_id: nodeId('REA', existing.id), created_at: now() } };
        const reaction = { id: newId(), content, user: bot };
        comment.reactions.push(reaction);
        return { status: 201, body: { ...reaction, node_id: nodeId('REA', reaction.id), created_at: now() } };
      },
    },
    {
      method: 'POST',
      name: 'POST /repos/:owner/:repo/check-runs',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/check-runs$/,
      auth: 'token',
      handle: ({ params: [o, r], body, origin }) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.name !== 'string' || !b.name) return unprocessable('Invalid request.\n\n"name" wasn\'t supplied.', 'name');
        if (typeof b.head_sha !== 'string' || !/^[0-9a-f]{40}$/.test(b.head_sha)) return unprocessable('No commit found for SHA', 'head_sha');
        const id = newId();
        const run: StoredCheckRun = {
          id,
          node_id: nodeId('CR', id),
          owner: o!,
          repo: r!,
          head_sha: b.head_sha,
          name: b.name,
          status: 'queued',
          conclusion: null,
          started_at: typeof b.started_at === 'string' ? b.started_at : now(),
          completed_at: null,
          external_id: null,
          details_url: null,
          output: { title: null, summary: null, text: null },
          actions: [],
        };
        const invalid = applyCheckRunBody(run, b);
        if (invalid) return invalid;
        checkRuns.set(id, run);
        return { status: 201, body: checkRunJson(run, origin) };
      },
    },
    {
      method: 'PATCH',
      name: 'PATCH /repos/:owner/:repo/check-runs/:check_run_id',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/check-runs\/(\d+)$/,
      auth: 'token',
      handle: ({ params: [o, r, id], body, origin }) => {
        const run = checkRuns.get(Number(id));
        if (!run || repoKey(run.owner, run.repo) !== repoKey(o!, r!)) return error(404, 'Not Found');
        // Validate on a copy: GitHub changes nothing when the request is rejected.
        const updated = structuredClone(run);
        const invalid = applyCheckRunBody(updated, (body ?? {}) as Record<string, unknown>);
        if (invalid) return invalid;
        Object.assign(run, updated);
        return { status: 200, body: checkRunJson(run, origin) };
      },
    },
    {
      method: 'GET',
      name: 'GET /repos/:owner/:repo/commits/:ref/check-runs',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/commits\/([^/]+)\/check-runs$/,
      auth: 'token',
      handle: ({ params: [o, r, ref], query, origin }) => {
        let runs = [...checkRuns.values()]
          .filter((c) => repoKey(c.owner, c.repo) === repoKey(o!, r!) && c.head_sha === ref)
          .sort((a, b) => b.id - a.id);
        const name = query.get('check_name');
        if (name) runs = runs.filter((c) => c.name === name);
        const status = query.get('status');
        if (status) runs = runs.filter((c) => c.status === status);
        // filter=latest (the default) keeps the most recent run of each name.
        if ((query.get('filter') ?? 'latest') === 'latest') {
          const seen = new Set<string>();
          runs = runs.filter((c) => !seen.has(c.name) && Boolean(seen.add(c.name)));
        }
        return { status: 200, body: { total_count: runs.length, check_runs: runs.map((c) => checkRunJson(c, origin)) } };
      },
    },
    {
      method: 'POST',
      name: 'POST /graphql',
      pattern: /^\/graphql$/,
      auth: 'token',
      handle: ({ body }) => graphql(body as { query?: string; variables?: Record<string, unknown> }),
    },
  ];

  function storeComment(owner: string, repo: string, issueNumber: number, body: string, author: StandinUser): StoredComment {
    const id = newId();
    const at = now();
    const comment: StoredComment = { id, node_id: nodeId('IC', id), owner, repo, issueNumber, body, user: author, created_at: at, updated_at: at, reactions: [] };
    comments.set(id, comment);
    return comment;
  }

  /** Only the minimizeComment mutation; anything else answers like GitHub does for an unknown field. */
  function graphql(body: { query?: string; variables?: Record<string, unknown> } | undefined): Reply {
    const query = body?.query ?? '';
    if (!/\bminimizeComment\b/.test(query)) {
      return { status: 200, body: { errors: [{ message: 'The GitHub stand-in only implements the minimizeComment mutation' }] } };
    }
    const vars = body?.variables ?? {};
    const resolve = (field: string): string | undefined => {
      const m = new RegExp(`${field}\\s*:\\s*(?:\\$(\\w+)|"([^"]*)"|(\\w+))`).exec(query);
      if (!m) return undefined;
      return m[1] !== undefined ? (vars[m[1]] as string | undefined) : (m[2] ?? m[3]);
    };
    const subjectId = resolve('subjectId');
    const classifier = resolve('classifier');
    if (!subjectId || !classifier) {
      return { status: 200, body: { errors: [{ message: 'minimizeComment requires subjectId and classifier' }] } };
    }
    const comment = [...comments.values()].find((c) => c.node_id === subjectId);
    if (!comment) {
      return {
        status: 200,
        body: {
          data: { minimizeComment: null },
          errors: [{ type: 'NOT_FOUND', path: ['minimizeComment'], message: `Could not resolve to a node with the global id of '${subjectId}'.` }],
        },
      };
    }
    comment.minimizedReason = classifier.toLowerCase();
    return {
      status: 200,
      body: { data: { minimizeComment: { minimizedComment: { isMinimized: true, minimizedReason: comment.minimizedReason } } } },
    };
  }

  let faults = opts.faults;
  let random = seeded(faults?.seed ?? 1);
  const FAULT_KINDS: FaultKind[] = ['502-before', '502-after', '403-rate-limit', '429'];

  function faultReply(kind: FaultKind): Reply {
    const retryAfter = String(faults?.retryAfter ?? 1);
    if (kind === '403-rate-limit') {
      return { ...error(403, 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.'), headers: { 'retry-after': retryAfter } };
    }
    if (kind === '429') return { ...error(429, 'Too Many Requests'), headers: { 'retry-after': retryAfter } };
    return { status: 502, body: { message: 'Server Error' } };
  }

  /** A known route's call, with a fault when one is due: 502-after makes the change, then fails. */
  function dispatch(req: Request): { reply: Reply; route?: Route; fault?: FaultKind } {
    const kind = faults && random() < faults.rate ? FAULT_KINDS[Math.floor(random() * FAULT_KINDS.length)]! : undefined;
    const route = routes.find((r) => r.method === req.method && r.pattern.test(req.path));
    if (kind && route && kind !== '502-after') return { route, reply: faultReply(kind), fault: kind };
    const answer = dispatchClean(req);
    return kind && answer.route ? { ...answer, reply: faultReply(kind), fault: kind } : answer;
  }

  function dispatchClean(req: Request): { reply: Reply; route?: Route } {
    const route = routes.find((r) => r.method === req.method && r.pattern.test(req.path));
    if (!route) return { reply: error(404, 'Not Found') };
    req.params = route.pattern.exec(req.path)!.slice(1);
    const [scheme, credential] = (req.auth ?? '').split(/\s+/, 2);
    if (route.auth === 'jwt') {
      if (scheme?.toLowerCase() !== 'bearer' || (credential ?? '').split('.').length !== 3) {
        return { route, reply: error(401, 'A JSON web token could not be decoded') };
      }
    } else if (!credential || !tokens.has(credential)) {
      return { route, reply: error(401, 'Bad credentials') };
    }
    return { route, reply: route.handle(req) };
  }

  const server = createServer((req, res) => {
    handleHttp(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, { status: 500, body: { message: String(err) } });
    });
  });

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://standin');
    // REST lives under /api/v3 and GraphQL at /api/graphql on GitHub Enterprise; accept api.github.com's paths too.
    const path = url.pathname.replace(/^\/api\/v3(?=\/)/, '').replace(/^\/api\/graphql$/, '/graphql');
    let body: unknown;
    let reply: Reply;
    let route: Route | undefined;
    let fault: FaultKind | undefined;
    try {
      body = raw ? JSON.parse(raw) : undefined;
      ({ reply, route, fault } = dispatch({
        method: req.method ?? 'GET',
        path,
        query: url.searchParams,
        body,
        params: [],
        auth: req.headers.authorization,
        origin: `http://${req.headers.host}`,
      }));
    } catch {
      body = raw;
      reply = error(400, 'Problems parsing JSON');
    }
    send(res, reply);
    const call: RecordedCall = {
      method: req.method ?? 'GET',
      path,
      query: Object.fromEntries(url.searchParams),
      body,
      status: reply.status,
      ...(fault ? { fault } : {}),
      route: route?.name,
      response: reply.body,
      at: new Date(),
    };
    calls.push(call);
    for (const fn of listeners) fn(call);
  }


  // ---- strict expectations --------------------------------------------------------------------------
  let expectations: CallExpectation[] | undefined;
  let expectOpts: Required<ExpectOptions> = { anyTokens: true, countFaultsThatChangedNothing: false };
  let ledgerStart = 0;
  const bounds = (e: CallExpectation) =>
    typeof e.times === 'number' || e.times === undefined
      ? { min: e.times ?? 1, max: e.times ?? 1 }
      : { min: e.times.min ?? 0, max: e.times.max ?? Infinity };
  const labelOf = (e: CallExpectation) => e.label ?? `${e.route}${e.path ? ` ${String(e.path)}` : ''}`;
  const describeCall = (c: RecordedCall) => `${c.method} ${c.path}${Object.keys(c.query).length ? `?${new URLSearchParams(c.query)}` : ''} → ${c.status}${c.fault ? ` (fault ${c.fault})` : ''}`;
  const matchesExpectation = (e: CallExpectation, c: RecordedCall) =>
    c.route === e.route &&
    (e.path === undefined || (typeof e.path === 'string' ? c.path === e.path : e.path.test(c.path))) &&
    (e.body === undefined || safely(() => e.body!(c.body)));

  function verifyCalls(): CallReport {
    if (!expectations) throw new Error('verifyCalls: no expectations set (call expectExactly first)');
    const counts = expectations.map(() => 0);
    const unexpected: string[] = [];
    for (const c of calls.slice(ledgerStart)) {
      if (c.route === INSTALLATION_TOKEN_ROUTE && expectOpts.anyTokens) continue;
      if (c.fault && c.fault !== '502-after' && !expectOpts.countFaultsThatChangedNothing) continue;
      const candidates = expectations.map((e, i) => (matchesExpectation(e, c) ? i : -1)).filter((i) => i >= 0);
      if (candidates.length === 0) {
        unexpected.push(`${describeCall(c)}${c.route ? '' : ' (no such route in the stand-in)'}`);
        continue;
      }
      const room = candidates.find((i) => counts[i]! < bounds(expectations![i]!).max);
      counts[room ?? candidates[0]!]!++;
    }
    const missing: string[] = [];
    const surplus: string[] = [];
    expectations.forEach((e, i) => {
      const { min, max } = bounds(e);
      const n = counts[i]!;
      const want = min === max ? `${min}` : `${min}..${max === Infinity ? '' : max}`;
      if (n < min) missing.push(`${labelOf(e)}: ${n} of ${want}`);
      if (n > max) surplus.push(`${labelOf(e)}: ${n}, expected ${want}`);
    });
    return { missing, surplus, unexpected, counts: expectations.map((e, i) => ({ label: labelOf(e), count: counts[i]! })) };
  }

  const problems = (r: CallReport) => [
    ...r.missing.map((m) => `missing: ${m}`),
    ...r.surplus.map((m) => `too many: ${m}`),
    ...r.unexpected.map((m) => `unexpected: ${m}`),
  ];

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;

  return {
    baseUrl: `http://${host}/api/v3`,
    host,
    calls,
    onCall(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    setPermission: (login, permission) => permissions.set(login.toLowerCase(), permission),
    setFaults: (next) => {
      faults = next;
      random = seeded(next?.seed ?? 1);
    },
    setPullRequest: (owner, repo, number, pr) => {
      pulls.set(issueKey(owner, repo, number), pr);
      issues.add(issueKey(owner, repo, number));
    },
    addIssueComment: (owner, repo, number, { body, login }) => {
      issues.add(issueKey(owner, repo, number));
      return storeComment(owner, repo, number, body, user(login));
    },
    comments: (owner, repo, issueNumber) =>
      [...comments.values()].filter(
        (c) => repoKey(c.owner, c.repo) === repoKey(owner, repo) && (issueNumber === undefined || c.issueNumber === issueNumber),
      ),
    checkRuns: (owner, repo) => [...checkRuns.values()].filter((c) => repoKey(c.owner, c.repo) === repoKey(owner, repo)),
    expectExactly: (more, o = {}) => {
      if (!expectations) {
        expectations = [];
        ledgerStart = calls.length;
      }
      expectations.push(...more);
      expectOpts = { ...expectOpts, ...o };
    },
    verifyCalls,
    assertExactly: () => {
      const found = problems(verifyCalls());
      if (found.length) throw new Error(`GitHub stand-in: calls other than expected:\n${found.join('\n')}`);
    },
    settled: async (timeoutMs = 90_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const report = verifyCalls();
        if (report.missing.length === 0) return;
        if (Date.now() > deadline) throw new Error(`GitHub stand-in: calls still expected after ${timeoutMs} ms:\n${problems(report).join('\n')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A body matcher that throws (reads a field of an absent body) does not match. */
function safely(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}

function send(res: ServerResponse, reply: Reply): void {
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
