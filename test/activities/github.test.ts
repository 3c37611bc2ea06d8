// The GitHub activities at the HTTP boundary: GitHub Enterprise base URLs for every call (tokens too),
// idempotent retries (hidden markers, external_id), and which failures are worth retrying.
import { generateKeyPairSync } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it, test } from 'vitest';
import { createGithubActivities, rethrowClassified, retryTransient } from '../../activities/github.ts';
import { ApplicationFailure } from '@temporalio/common';
import { createGithubClients } from '../../activities/github-client.ts';
import { githubBaseUrl } from '../../app/config.ts';
import type { RepoRef } from '../../shared/contracts.ts';

const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const repo: RepoRef = { owner: 'acme', name: 'infra', installationId: 7, cloneUrl: 'https://example.invalid/acme/infra.git' };
const token = { token: 'ghs_unit000000000000000000000000000000', expires_at: new Date(Date.now() + 3600_000).toISOString() };

function activities(baseUrl = 'https://api.github.com', temporalUiUrl?: string) {
  const github = createGithubClients({ appId: '1', privateKey, webhookSecret: 'x', baseUrl });
  return createGithubActivities({ github, temporalUiUrl, namespace: 'default' });
}

const workflowExecution = { workflowId: 'pr:acme/infra#3', runId: 'run-1' };
const env = (attempt = 1) => new MockActivityEnvironment({ attempt, workflowExecution });

beforeEach(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

describe('GitHub Enterprise', () => {
  test('installation tokens and API calls go to GHE_HOST, never api.github.com', async () => {
    const baseUrl = githubBaseUrl({ GHE_HOST: 'ghe.example.com', GHE_PROTOCOL: 'https' });
    expect(baseUrl).toBe('https://ghe.example.com/api/v3');
    const ghe = nock('https://ghe.example.com')
      .post('/api/v3/app/installations/7/access_tokens')
      .reply(201, token)
      .get('/api/v3/repos/acme/infra/collaborators/bob/permission')
      .reply(200, { permission: 'write' });
    const dotcom = nock('https://api.github.com').post(/.*/).reply(500).get(/.*/).reply(500);

    const github = createGithubClients({ appId: '1', privateKey, webhookSecret: 'x', baseUrl });
    // Token first, before any other call: the pitfall seen with Probot's own client.
    expect(await github.installationToken(7)).toBe(token.token);
    const acts = createGithubActivities({ github, namespace: 'default' });
    expect(await env().run(acts.getPermission, { repo, login: 'bob' })).toBe('write');
    expect(ghe.pendingMocks()).toEqual([]);
    expect(dotcom.pendingMocks()).toHaveLength(2);
  });
});

describe('clone tokens', () => {
  test('can only read the one repository being cloned', async () => {
    let body: unknown;
    const api = nock('https://api.github.com')
      .post('/app/installations/7/access_tokens', (b) => {
        body = b;
        return true;
      })
      .reply(201, token);
    const github = createGithubClients({ appId: '1', privateKey, webhookSecret: 'x', baseUrl: 'https://api.github.com' });
    expect(await github.installationToken(7, 'infra')).toBe(token.token);
    expect(body).toEqual({ repositories: ['infra'], permissions: { contents: 'read' } });
    expect(api.pendingMocks()).toEqual([]);
  });
});

describe('postComment', () => {
  test('a first attempt posts without looking; parts carry hidden markers', async () => {
    let body = '';
    const api = nock('https://api.github.com')
      .post('/app/installations/7/access_tokens')
      .reply(201, token)
      .post('/repos/acme/infra/issues/3/comments', (b) => {
        body = b.body;
        return true;
      })
      .reply(201, { id: 11, node_id: 'IC_11' });
    const posted = await env().run(activities().postComment, {
      repo,
      number: 3,
      key: 'reply-d1',
      message: { template: 'replies/no-plan', data: { command: 'apply' } },
    });
    expect(posted).toEqual({ ids: [11], nodeIds: ['IC_11'] });
    expect(body).toContain('There is no current plan to `/apply`.');
    expect(body).toContain('<!-- terrapin:reply-d1:0 -->');
    expect(api.pendingMocks()).toEqual([]);
  });

  test('a retried attempt finds what an earlier attempt posted and does not post it again', async () => {
    const api = nock('https://api.github.com')
      .post('/app/installations/7/access_tokens')
      .reply(201, token)
      .get('/repos/acme/infra/issues/3/comments')
      .query(true)
      .reply(200, [
        { id: 5, node_id: 'IC_5', body: 'someone else', user: { login: 'mallory', type: 'User' } },
        // A person pasting the marker does not stop the post; the app's own earlier attempt does.
        { id: 6, node_id: 'IC_6', body: 'spoofed\n<!-- terrapin:reply-d2:0 -->', user: { login: 'mallory', type: 'User' } },
        { id: 12, node_id: 'IC_12', body: 'earlier attempt\n<!-- terrapin:reply-d2:0 -->', user: { login: 'terrapin[bot]', type: 'Bot' } },
      ]);
    const posted = await env(2).run(activities().postComment, {
      repo,
      number: 3,
      key: 'reply-d2',
      message: { template: 'replies/no-plan', data: { command: 'apply' } },
    });
    expect(posted).toEqual({ ids: [12], nodeIds: ['IC_12'] });
    expect(api.pendingMocks()).toEqual([]);
  });
});

describe('upsertCheckRun', () => {
  test('a retried create finds the check run by name and external_id and updates it; details link to the Temporal UI', async () => {
    let patched: any;
    const api = nock('https://api.github.com')
      .post('/app/installations/7/access_tokens')
      .reply(201, token)
      .get('/repos/acme/infra/commits/abc/check-runs')
      .query({ check_name: 'terrapin/plan', filter: 'latest' })
      .reply(200, { total_count: 1, check_runs: [{ id: 99, external_id: 'pr:acme/infra#3' }] })
      .patch('/repos/acme/infra/check-runs/99', (b) => {
        patched = b;
        return true;
      })
      .reply(200, { id: 99 });
    const id = await env(3).run(activities('https://api.github.com', 'http://localhost:8233/').upsertCheckRun, {
      repo,
      headSha: 'abc',
      name: 'terrapin/plan',
      status: 'in_progress' as const,
      output: { template: 'checks/plan-running', data: { shortSha: 'abc', sha: 'abc', project: '.', workspace: 'default' } },
      actions: ['replan' as const],
    });
    expect(id).toBe(99);
    expect(patched).toMatchObject({
      name: 'terrapin/plan',
      status: 'in_progress',
      external_id: 'pr:acme/infra#3',
      details_url: 'http://localhost:8233/namespaces/default/workflows/pr%3Aacme%2Finfra%233/run-1/history',
      output: { title: 'Planning abc…' },
      actions: [{ identifier: 'replan', label: 'Re-plan', description: 'Run terraform plan again' }],
    });
    expect(api.pendingMocks()).toEqual([]);
  });
});

describe('getPullRequest', () => {
  test('reads the PR into a snapshot (used when a comment starts the workflow)', async () => {
    nock('https://api.github.com')
      .post('/app/installations/7/access_tokens')
      .reply(201, token)
      .get('/repos/acme/infra/pulls/3')
      .reply(200, {
        number: 3,
        state: 'open',
        draft: true,
        user: { login: 'alice' },
        labels: [{ name: 'prod' }],
        head: { sha: 'h'.repeat(40), ref: 'feature', repo: { clone_url: 'https://github.com/fork/infra.git' } },
        base: { sha: 'b'.repeat(40), ref: 'main', repo: { clone_url: 'https://github.com/acme/infra.git' } },
      });
    expect(await env().run(activities().getPullRequest, { repo, number: 3 })).toEqual({
      headSha: 'h'.repeat(40),
      headRef: 'feature',
      baseRef: 'main',
      baseSha: 'b'.repeat(40),
      author: 'alice',
      draft: true,
      headCloneUrl: 'https://github.com/fork/infra.git',
      state: 'open',
      labels: ['prod'],
      fromFork: true,
    });
  });
});

describe('failures', () => {
  test.each([401, 404, 422])('%i is not retryable', { timeout: 20_000 }, async (status) => {
    nock('https://api.github.com').post('/app/installations/7/access_tokens').reply(201, token);
    // auth-app retries a 401 for a few seconds after minting a token (replication delay), then gives up.
    const scope = nock('https://api.github.com').post('/repos/acme/infra/issues/comments/1/reactions');
    (status === 401 ? scope.times(10) : scope).reply(status, { message: 'no' });
    await expect(env().run(activities().reactToComment, { repo, commentId: 1 })).rejects.toMatchObject({
      name: 'ApplicationFailure',
      nonRetryable: true,
      type: `GitHub${status}`,
    });
  });

  test.each([
    [502, {}, undefined],
    [429, { 'retry-after': '1' }, 1000],
    [403, { 'retry-after': '30' }, 30_000],
  ])('%i is retryable', async (status, headers, delay) => {
    nock('https://api.github.com').post('/app/installations/7/access_tokens').reply(201, token).post('/repos/acme/infra/issues/comments/1/reactions').reply(status, { message: 'later' }, headers);
    const err = await env().run(activities().reactToComment, { repo, commentId: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { nonRetryable?: boolean }).nonRetryable).not.toBe(true);
    // 5xx keep the HTTP error (the retry policy's backoff applies); rate limits say when to come back.
    if (delay === undefined) expect((err as { status?: number }).status).toBe(status);
    else expect(err).toMatchObject({ type: 'GitHubRateLimited', nextRetryDelay: delay });
  });

  test('a user who is not a collaborator has no permission', async () => {
    nock('https://api.github.com').post('/app/installations/7/access_tokens').reply(201, token).get('/repos/acme/infra/collaborators/eve/permission').reply(404, { message: 'Not Found' });
    expect(await env().run(activities().getPermission, { repo, login: 'eve' })).toBe('none');
  });
});

describe('rethrowClassified', () => {
  const failure = (status: number, headers: Record<string, string> = {}) => Object.assign(new Error(`HTTP ${status}`), { status, response: { headers } });
  const thrown = (err: unknown, now?: number): unknown => {
    try {
      rethrowClassified(err, 'posting', now);
    } catch (e) {
      return e;
    }
    throw new Error('did not throw');
  };

  it('retries rate limits no sooner than GitHub asks', () => {
    for (const err of [failure(429, { 'retry-after': '7' }), failure(403, { 'retry-after': '7' })]) {
      const e = thrown(err) as ApplicationFailure;
      expect(e).toBeInstanceOf(ApplicationFailure);
      expect({ type: e.type, nonRetryable: e.nonRetryable, delay: e.nextRetryDelay }).toEqual({ type: 'GitHubRateLimited', nonRetryable: false, delay: 7000 });
    }
    // The primary limit: remaining 0 until the reset time.
    const primary = thrown(failure(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1000030' }), 1_000_000_000) as ApplicationFailure;
    expect(primary.nextRetryDelay).toBe(30_000);
  });

  it('makes 401, 404, 422 and permission 403s non-retryable, and leaves 5xx to the retry policy', () => {
    for (const status of [401, 403, 404, 422]) {
      const e = thrown(failure(status)) as ApplicationFailure;
      expect({ type: e.type, nonRetryable: e.nonRetryable }).toEqual({ type: `GitHub${status}`, nonRetryable: true });
    }
    const server = failure(502);
    expect(thrown(server)).toBe(server);
  });
});

describe('retryTransient', () => {
  const failure = (status: number, headers: Record<string, string> = {}) => Object.assign(new Error(`HTTP ${status}`), { status, response: { headers } });
  /** A call that fails with these errors in turn, then answers. */
  const flaky = (errors: unknown[]) => {
    let calls = 0;
    const call = async () => {
      calls++;
      if (errors.length) throw errors.shift();
      return 'token';
    };
    return { call, calls: () => calls };
  };

  it('rides out 5xx, rate limits and dropped connections, waiting as long as retry-after asks', async () => {
    const waits: number[] = [];
    let beats = 0;
    const f = flaky([failure(502), failure(429, { 'retry-after': '3' }), Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), failure(403, { 'retry-after': '90' })]);
    const token = await retryTransient('fetching the token', f.call, { sleep: async (ms) => void waits.push(ms), onWait: () => beats++ });
    expect(token).toBe('token');
    expect(f.calls()).toBe(5);
    // 1 s backoff, retry-after 3 s, 4 s backoff, retry-after 90 s capped at 20 s.
    expect(waits).toEqual([1000, 3000, 4000, 20_000]);
    expect(beats).toBe(4);
  });

  it('gives up after its attempts, and at once on a failure retrying cannot fix, classified as usual', async () => {
    const sleep = async () => {};
    const always = flaky(Array.from({ length: 10 }, () => failure(503)));
    await expect(retryTransient('fetching the token', always.call, { attempts: 3, sleep })).rejects.toThrow('HTTP 503');
    expect(always.calls()).toBe(3);
    const denied = flaky([failure(401)]);
    const err = await retryTransient('fetching the token', denied.call, { sleep }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).message).toBe('fetching the token: GitHub answered 401');
    expect(denied.calls()).toBe(1);
    // A fault of our own (a bad private key, a bug) is not GitHub's blip: no waiting.
    const broken = flaky([new TypeError('invalid key')]);
    await expect(retryTransient('fetching the token', broken.call, { sleep })).rejects.toThrow('invalid key');
    expect(broken.calls()).toBe(1);
  });
});
