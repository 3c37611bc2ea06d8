// A small chainable nock builder for the GitHub API the activities call.
// Every expectation is one interceptor matched by its body, so concurrent calls may arrive in any
// order; `settled()` waits until all happened and `assertNoUnexpected()` proves nothing else did.
import nock from 'nock';
import { afterAll, afterEach, beforeEach, expect } from 'vitest';

type Matcher = string | RegExp | ((text: string) => boolean);

export interface RecordedCall {
  method: string;
  path: string;
  body: any;
}

/** GitHub answers 422 to check runs breaking these limits; the mock refuses to match them. */
function withinCheckRunLimits(b: any): boolean {
  const actions: any[] = b.actions ?? [];
  return (
    actions.length <= 3 &&
    actions.every((a) => a.label.length <= 20 && a.description.length >= 1 && a.description.length <= 40 && a.identifier.length <= 20) &&
    (b.output?.title ?? '').length <= 255 &&
    (b.output?.summary ?? '').length <= 65535
  );
}

function matches(m: Matcher | undefined, text: string | undefined): boolean {
  if (m === undefined) return true;
  if (text === undefined) return false;
  if (typeof m === 'string') return text.includes(m);
  if (m instanceof RegExp) return m.test(text);
  return m(text);
}

/**
 * A request nock had no interceptor for, as "METHOD URL". nock 15 reports fetch requests (Octokit's) as a
 * Request, with `method` and `url`; node's http requests as a ClientRequest-like object with options.
 */
export function describeUnmatched(req: any): { text: string; host: string } {
  if (typeof req?.url === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(req.url)) {
    return { text: `${req.method ?? 'GET'} ${req.url}`, host: new URL(req.url).host };
  }
  const opts = req?.options ?? {};
  const method = req?.method ?? opts.method ?? 'GET';
  const host = String(req?.host ?? opts.host ?? opts.hostname ?? req?.hostname ?? '');
  const path = req?.path ?? opts.path ?? req?.url ?? '';
  const protocol = opts.protocol ?? (String(opts.port ?? '') === '443' ? 'https:' : 'http:');
  return { text: `${method} ${host ? `${protocol}//${host}` : ''}${path}`, host };
}

/**
 * Requests nock had no interceptor for, by the test that made them: each test sees only its own, and a
 * test that made one fails in afterEach even if it never asked. A request to a repository a test mocked
 * (`new GithubMock(owner, repo)`) is that test's; one that comes after its test ended (a workflow of that
 * test still running) fails the file in afterAll, naming the test. Any other belongs to the running test.
 */
const unexpectedByTest = new Map<string, string[]>();
const OUTSIDE = '(outside any test)';
const late: string[] = [];
let activeTest: string | undefined;
const currentTest = () => activeTest ?? OUTSIDE;
const unexpectedNow = (): string[] => unexpectedByTest.get(currentTest()) ?? [];
/** "/repos/owner/repo" → the test that mocked it. */
const repoOwners = new Map<string, string>();

/** The running test's unexpected calls so far, forgotten once taken (for tests of this mock itself). */
export function takeUnexpected(): string[] {
  const calls = unexpectedNow();
  unexpectedByTest.delete(currentTest());
  return calls;
}

nock.emitter.on('no match', (req: any) => {
  const { text, host } = describeUnmatched(req);
  // Allowed loopback traffic (the webhook endpoint in some tests) is reported as "no match" too.
  if (/^(127\.0\.0\.1|localhost|\[::1\])(:|$)/.test(host)) return;
  const repo = /\/repos\/[^/?#]+\/[^/?#]+/.exec(text)?.[0]?.toLowerCase();
  const owner = repo ? repoOwners.get(repo) : undefined;
  if (owner && owner !== activeTest) {
    late.push(`${text} (a call of "${owner}", made after it ended)`);
    return;
  }
  const test = owner ?? currentTest();
  unexpectedByTest.set(test, [...(unexpectedByTest.get(test) ?? []), text]);
});

// Under vitest only: the history recorder (scripts/record-histories.ts) drives the same mocks without a runner.
if (process.env.VITEST) {
  beforeEach(() => {
    activeTest = expect.getState().currentTestName ?? 'unnamed test';
    unexpectedByTest.delete(activeTest);
  });
  afterEach(() => {
    const test = currentTest();
    activeTest = undefined;
    const calls = unexpectedByTest.get(test) ?? [];
    unexpectedByTest.delete(test);
    if (calls.length) throw new Error(`GitHub calls no mock expected, made during this test:\n${calls.join('\n')}`);
  });
  afterAll(() => {
    // Made between tests or after the last one: the file fails, naming them.
    const calls = [...(unexpectedByTest.get(OUTSIDE) ?? []), ...late.splice(0)];
    unexpectedByTest.clear();
    if (calls.length) throw new Error(`GitHub calls no mock expected, made outside any test:\n${calls.join('\n')}`);
  });
}

export class GithubMock {
  readonly calls: RecordedCall[] = [];
  private readonly scope: nock.Scope;
  private nextId = 1000;
  private readonly repoPath: string;

  constructor(owner: string, repo: string, baseUrl = 'https://api.github.com') {
    this.scope = nock(baseUrl);
    this.repoPath = `/repos/${owner}/${repo}`;
    // Made in a test: the repository's calls are that test's. Made in beforeAll: every test's.
    if (activeTest) repoOwners.set(this.repoPath.toLowerCase(), activeTest);
    else repoOwners.delete(this.repoPath.toLowerCase());
    // Installation tokens are auth plumbing, cached per worker: allowed any number of times.
    nock(baseUrl)
      .persist()
      .post(/^\/app\/installations\/\d+\/access_tokens$/)
      .reply(201, () => ({ token: 'ghs_testtoken000000000000000000000000', expires_at: new Date(Date.now() + 3600_000).toISOString() }));
  }

  private record(method: string, path: string, body: any): void {
    this.calls.push({ method, path, body });
  }

  /** nock 15 hands reply functions the fetch Request. */
  private async read(req: Request): Promise<[string, any]> {
    const text = await req.text();
    return [new URL(req.url).pathname, text ? JSON.parse(text) : undefined];
  }

  private id(): number {
    return this.nextId++;
  }

  /** A check run created with this name/status (and, optionally, a title matching). */
  createCheckRun(name: string, status: string, opts: { conclusion?: string; title?: Matcher; summary?: Matcher; failWith?: number } = {}): this {
    this.scope
      .post(`${this.repoPath}/check-runs`, (b) => withinCheckRunLimits(b) && b.name === name && b.status === status && b.conclusion === opts.conclusion && matches(opts.title, b.output?.title) && (opts.summary === undefined || matches(opts.summary, b.output?.summary)))
      .reply(opts.failWith ?? 201, async (req: Request) => {
        const [path, body] = await this.read(req);
        this.record('POST', path, body);
        return opts.failWith ? { message: 'Validation Failed' } : { id: this.id(), name };
      });
    return this;
  }

  /** A check run with this name updated to status/conclusion. */
  updateCheckRun(name: string, status: string, opts: { conclusion?: string; title?: Matcher; summary?: Matcher } = {}): this {
    this.scope
      .patch(new RegExp(`^${this.repoPath}/check-runs/\\d+$`), (b) => withinCheckRunLimits(b) && b.name === name && b.status === status && b.conclusion === opts.conclusion && matches(opts.title, b.output?.title) && (opts.summary === undefined || matches(opts.summary, b.output?.summary)))
      .reply(200, async (req: Request) => {
        const [path, body] = await this.read(req);
        this.record('PATCH', path, body);
        return { id: Number(path.split('/').pop()), name };
      });
    return this;
  }

  comment(number: number, body: Matcher): this {
    this.scope
      .post(`${this.repoPath}/issues/${number}/comments`, (b) => matches(body, b.body))
      .reply(201, async (req: Request) => {
        const [path, reqBody] = await this.read(req);
        this.record('POST', path, reqBody);
        const id = this.id();
        return { id, node_id: `IC_node${id}`, body: reqBody.body };
      });
    return this;
  }

  reaction(commentId: number): this {
    this.scope
      .post(`${this.repoPath}/issues/comments/${commentId}/reactions`, (b) => b.content === 'eyes')
      .reply(201, async (req: Request) => {
        const [path, body] = await this.read(req);
        this.record('POST', path, body);
        return { id: this.id(), content: 'eyes' };
      });
    return this;
  }

  permission(login: string, permission: 'admin' | 'write' | 'read' | 'none'): this {
    this.scope.get(`${this.repoPath}/collaborators/${login}/permission`).reply(200, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return { permission, user: { login } };
    });
    return this;
  }

  /** GET pulls/:n/commits: the PR's commits, by author and committer login (null: no linked account). */
  prCommits(number: number, commits: Array<{ author?: string | null; committer?: string | null }> = []): this {
    this.scope
      .get(`${this.repoPath}/pulls/${number}/commits`)
      .query(true)
      .reply(200, async (req: Request) => {
        const [path] = await this.read(req);
        this.record('GET', path, undefined);
        return commits.map((c, i) => ({
          sha: String(i).padStart(40, '0'),
          author: c.author ? { login: c.author, type: 'User' } : null,
          committer: c.committer ? { login: c.committer, type: 'User' } : null,
        }));
      });
    return this;
  }

  /** GET issues (open, one label): the drift issues that exist. */
  openIssues(issues: Array<{ number: number; title: string; body: string }>): this {
    this.scope
      .get(`${this.repoPath}/issues`)
      .query(true)
      .reply(200, async (req: Request) => {
        const [path] = await this.read(req);
        this.record('GET', path, undefined);
        return issues.map((i) => ({ ...i, state: 'open', labels: [{ name: 'terrapin:drift' }] }));
      });
    return this;
  }

  label(name: string, exists: boolean): this {
    this.scope.get(`${this.repoPath}/labels/${encodeURIComponent(name)}`).reply(exists ? 200 : 404, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return exists ? { name } : { message: 'Not Found' };
    });
    return this;
  }

  createIssue(matcher: (b: { title: string; body: string; labels?: string[] }) => boolean, number: number): this {
    this.scope.post(`${this.repoPath}/issues`, (b) => matcher(b)).reply(201, async (req: Request) => {
      const [path, body] = await this.read(req);
      this.record('POST', path, body);
      return { number, html_url: `https://github.com${this.repoPath.slice('/repos'.length)}/issues/${number}`, ...body };
    });
    return this;
  }

  closeIssue(number: number): this {
    this.scope.patch(`${this.repoPath}/issues/${number}`, (b) => b.state === 'closed').reply(200, async (req: Request) => {
      const [path, body] = await this.read(req);
      this.record('PATCH', path, body);
      return { number, state: 'closed' };
    });
    return this;
  }

  /** GET pulls/:n in full, as a workflow started by a comment reads its PR. */
  pullRequest(number: number, pr: { headSha: string; headRef: string; baseSha: string; baseRef: string; cloneUrl: string; author: string; state?: 'open' | 'closed' }): this {
    this.scope.get(`${this.repoPath}/pulls/${number}`).reply(200, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return {
        number,
        state: pr.state ?? 'open',
        draft: false,
        mergeable: true,
        labels: [],
        user: { login: pr.author },
        head: { sha: pr.headSha, ref: pr.headRef, repo: { clone_url: pr.cloneUrl } },
        base: { sha: pr.baseSha, ref: pr.baseRef, repo: { clone_url: pr.cloneUrl } },
      };
    });
    return this;
  }

  /** GET pulls/:n, as apply requirements read it (mergeable). */
  pull(number: number, fields: { mergeable: boolean | null }): this {
    this.scope.get(`${this.repoPath}/pulls/${number}`).reply(200, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return { number, state: 'open', ...fields };
    });
    return this;
  }

  /** GET compare/:base...:head: where the base is now and where the PR forked from it. */
  compare(basehead: string, shas: { base: string; mergeBase: string }): this {
    this.scope
      .get(`${this.repoPath}/compare/${basehead}`)
      .query(true)
      .reply(200, async (req: Request) => {
        const [path] = await this.read(req);
        this.record('GET', path, undefined);
        return { base_commit: { sha: shas.base }, merge_base_commit: { sha: shas.mergeBase } };
      });
    return this;
  }

  teamMembership(team: string, login: string, active: boolean): this {
    const [org, slug] = team.split('/');
    this.scope.get(`/orgs/${org}/teams/${slug}/memberships/${login}`).reply(active ? 200 : 404, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return active ? { state: 'active', role: 'member' } : { message: 'Not Found' };
    });
    return this;
  }

  minimize(nodeId: string | RegExp = /.*/): this {
    this.scope
      .post('/graphql', (b) => /minimizeComment/.test(b.query) && b.query.includes('OUTDATED') && matches(nodeId, b.variables?.id))
      .reply(200, async (req: Request) => {
        const [path, body] = await this.read(req);
        this.record('POST', path, body);
        return { data: { minimizeComment: { minimizedComment: { isMinimized: true } } } };
      });
    return this;
  }

  /** GET commits/:sha/pulls: the PRs a commit belongs to (merged ones with their merge commit). */
  pullsOfCommit(sha: string, pulls: Array<{ number: number; merged: boolean }>): this {
    this.scope.get(`${this.repoPath}/commits/${sha}/pulls`).query(true).reply(200, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return pulls.map((p) => ({ number: p.number, state: 'closed', merged_at: p.merged ? '2026-11-01T00:00:00Z' : null, merge_commit_sha: p.merged ? sha : null }));
    });
    return this;
  }

  /** GET pulls?state=open&base=<base>: the open PRs into a branch (one page). */
  openPulls(base: string, numbers: number[]): this {
    this.scope
      .get(`${this.repoPath}/pulls`)
      .query((q) => q.state === 'open' && q.base === base)
      .reply(200, async (req: Request) => {
        const [path] = await this.read(req);
        this.record('GET', path, undefined);
        return numbers.map((number) => ({ number, state: 'open', base: { ref: base } }));
      });
    return this;
  }

  /**
   * The App's questions about the repository itself (activities/operator-repos.ts): where it is installed
   * (GET /repos/:o/:r/installation) and its clone URL (GET /repos/:o/:r).
   */
  repository(cloneUrl: string, installationId = 42): this {
    const [owner, name] = this.repoPath.split('/').slice(2) as [string, string];
    this.scope.get(`${this.repoPath}/installation`).reply(200, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return { id: installationId };
    });
    this.scope.get(this.repoPath).reply(200, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return { name, owner: { login: owner }, clone_url: cloneUrl, default_branch: 'main' };
    });
    return this;
  }

  /** The App's webhook delivery log (GET /app/hook/deliveries), one page, newest first; guids are `guid-<id>`. */
  hookDeliveries(entries: Array<{ id: number; status: number; redelivery?: boolean; guid?: string }>): this {
    this.scope
      .get('/app/hook/deliveries')
      .query(true)
      .reply(200, async (req: Request) => {
        const [path] = await this.read(req);
        this.record('GET', path, undefined);
        const now = Date.now();
        return entries.map((e, i) => ({
          id: e.id,
          guid: e.guid ?? `guid-${e.id}`,
          delivered_at: new Date(now - i * 1000).toISOString(),
          redelivery: e.redelivery ?? false,
          duration: 0.5,
          status: e.status === 200 ? 'OK' : `Invalid HTTP Response: ${e.status}`,
          status_code: e.status,
          event: 'pull_request',
          action: 'opened',
          installation_id: 42,
          repository_id: 1,
          throttled_at: null,
        }));
      });
    return this;
  }

  /** POST /app/hook/deliveries/:id/attempts: GitHub accepts to send the delivery again. */
  redeliver(id: number): this {
    this.scope.post(`/app/hook/deliveries/${id}/attempts`).reply(202, async (req: Request) => {
      const [path] = await this.read(req);
      this.record('POST', path, undefined);
      return {};
    });
    return this;
  }

  /** The sweep's reading: the App's one installation (42), with this repository in it. */
  sweepListing(cloneUrl: string): this {
    const [owner, name] = this.repoPath.split('/').slice(2) as [string, string];
    const recorded = (body: unknown) => async (req: Request) => {
      const [path] = await this.read(req);
      this.record('GET', path, undefined);
      return body;
    };
    this.scope.get('/app/installations').query(true).reply(200, recorded([{ id: 42, account: { login: owner }, app_id: 1 }]));
    this.scope.get('/installation/repositories').query(true).reply(200, recorded({ total_count: 1, repositories: [{ id: 1, name, full_name: `${owner}/${name}`, owner: { login: owner }, clone_url: cloneUrl }] }));
    return this;
  }

  calledWith(method: string, pathPart: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && c.path.includes(pathPart));
  }

  comments(): string[] {
    return this.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/comments')).map((c) => c.body.body as string);
  }

  /** Waits until every expected call happened. */
  async settled(timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.scope.isDone()) {
      if (Date.now() > deadline) throw new Error(`GitHub calls still expected:\n${this.scope.pendingMocks().join('\n')}\nunexpected: ${unexpectedNow().join(', ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  assertNoUnexpected(): void {
    expect(unexpectedNow()).toEqual([]);
    expect(this.scope.pendingMocks()).toEqual([]);
  }
}
