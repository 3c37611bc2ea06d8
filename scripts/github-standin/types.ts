// The stand-in's public shapes: what it records and stores, and the expectation and fault options.
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
