// The drift issue activities at the HTTP boundary: every GitHub call is listed, in order, and nothing
// else may happen. Bodies posted by one step are what the next step's listing returns, as on GitHub.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createDriftIssueActivities, type DriftIssueReport } from '../../activities/drift-issues.ts';
import { createGithubClients } from '../../activities/github-client.ts';
import type { RepoRef } from '../../shared/contracts.ts';

const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const API = 'https://api.github.com';
const repo: RepoRef = { owner: 'acme', name: 'infra', installationId: 7, cloneUrl: 'https://example.invalid/acme/infra.git' };
const SHA1 = 'a'.repeat(40);
const SHA2 = 'b'.repeat(40);
const SHA3 = 'c'.repeat(40);
const LIST = { state: 'open', labels: 'terrapin:drift', per_page: '100' };

interface Call {
  method: string;
  path: string;
  body?: any;
}
let calls: Call[];
let unmatched: string[];
let dir: string;
let planTextFile: string;

nock.emitter.on('no match', (req: any) => {
  unmatched.push(`${req.method ?? req.options?.method} ${req.path ?? req.options?.path ?? req.url}`);
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'terrapin-drift-issues-'));
  planTextFile = join(dir, 'plan.diff.txt');
  await writeFile(planTextFile, 'terraform_data.keep: Refreshing state...\n\n~   resource "terraform_data" "keep" {\n~       input = "v2" -> "v1"\n    }\n\nPlan: 0 to add, 1 to change, 0 to destroy.');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  calls = [];
  unmatched = [];
  nock.disableNetConnect();
  // Installation tokens are auth plumbing, not part of what is asserted.
  nock(API)
    .persist()
    .post('/app/installations/7/access_tokens')
    .reply(201, { token: 'ghs_unit000000000000000000000000000000', expires_at: new Date(Date.now() + 3600_000).toISOString() });
});
afterEach(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

/** Answers one request and records it. */
function answer(interceptor: nock.Interceptor, status: number, response: unknown, headers?: Record<string, string>): void {
  interceptor.reply(
    status,
    async (req: Request) => {
      const text = await req.text();
      calls.push({ method: req.method, path: new URL(req.url).pathname, ...(text ? { body: JSON.parse(text) } : {}) });
      return response as nock.Body;
    },
    headers,
  );
}

function assertOnly(expected: string[]): void {
  expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual(expected);
  expect(unmatched).toEqual([]);
  expect(nock.pendingMocks().filter((m) => !m.includes('access_tokens'))).toEqual([]);
}

function activities() {
  const github = createGithubClients({ appId: '1', privateKey, webhookSecret: 'x', baseUrl: API });
  return createDriftIssueActivities({ github });
}
const env = (attempt = 1) => new MockActivityEnvironment({ attempt });

const report = (extra: Partial<DriftIssueReport> = {}): DriftIssueReport => ({
  repo,
  project: 'network',
  sha: SHA1,
  resources: ['terraform_data.keep'],
  summaryLine: 'Plan: 0 to add, 1 to change, 0 to destroy.',
  planTextFile,
  reconcile: true,
  ...extra,
});

const otherProjectIssue = { number: 5, title: 'Drift detected: network-edge', body: 'x\n<!-- terrapin:drift network-edge -->' };
const pullRequest = { number: 6, title: 'Drift detected: network', body: '', pull_request: { url: 'x' } };

/** Opens the issue as a first report would, and returns its body as GitHub now holds it. */
async function openIssue(r: DriftIssueReport): Promise<string> {
  answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, []);
  answer(nock(API).get('/repos/acme/infra/labels/terrapin%3Adrift'), 200, { name: 'terrapin:drift' });
  answer(nock(API).post('/repos/acme/infra/issues'), 201, { number: 42 });
  await env().run(activities().reportDrift, r);
  const body = calls.at(-1)!.body.body as string;
  calls = [];
  return body;
}

describe('reportDrift', () => {
  test('opens the issue, and the label first, when none is open', async () => {
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [otherProjectIssue, pullRequest]);
    answer(nock(API).get('/repos/acme/infra/labels/terrapin%3Adrift'), 404, { message: 'Not Found' });
    answer(nock(API).post('/repos/acme/infra/labels'), 201, { name: 'terrapin:drift' });
    answer(nock(API).post('/repos/acme/infra/issues'), 201, { number: 42 });

    const result = await env().run(activities().reportDrift, report());
    expect(result).toEqual({ number: 42, created: true, commented: false });
    assertOnly([
      'GET /repos/acme/infra/issues',
      'GET /repos/acme/infra/labels/terrapin%3Adrift',
      'POST /repos/acme/infra/labels',
      'POST /repos/acme/infra/issues',
    ]);
    expect(calls[2]!.body).toEqual({ name: 'terrapin:drift', color: expect.stringMatching(/^[0-9a-f]{6}$/) });
    const created = calls[3]!.body;
    expect(created.title).toBe('Drift detected: network');
    expect(created.labels).toEqual(['terrapin:drift']);
    expect(created.body).toContain('<!-- terrapin:drift network -->');
    expect(created.body).toContain('- `terraform_data.keep`');
    expect(created.body).toContain(`at ${SHA1}`);
    expect(created.body).toContain('<details><summary>Plan that brings the infrastructure back to the code</summary>');
    expect(created.body).toContain('```diff\nterraform_data.keep: Refreshing state...');
    expect(created.body).toContain('Comment `/drift` to check again');
    expect(created.body).toContain('A writer commenting `/approve` on this issue applies the fix');
  });

  test('keeps the body current without a comment while the drifted resources stay the same', async () => {
    const body = await openIssue(report({ reconcile: false }));
    expect(body).not.toContain('/approve');

    // Same check again: nothing to do.
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [{ number: 42, title: 'Drift detected: network', body }]);
    expect(await env().run(activities().reportDrift, report({ reconcile: false }))).toEqual({ number: 42, created: false, commented: false });
    assertOnly(['GET /repos/acme/infra/issues']);

    // A newer commit, same resources: the body says where it was checked, silently.
    calls = [];
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [{ number: 42, title: 'Drift detected: network', body }]);
    answer(nock(API).patch('/repos/acme/infra/issues/42'), 200, { number: 42 });
    expect(await env().run(activities().reportDrift, report({ sha: SHA2, reconcile: false }))).toEqual({ number: 42, created: false, commented: false });
    assertOnly(['GET /repos/acme/infra/issues', 'PATCH /repos/acme/infra/issues/42']);
    expect(Object.keys(calls[1]!.body)).toEqual(['body']);
    expect(calls[1]!.body.body).toContain(`Last checked at ${SHA2}`);
  });

  test('comments when the set of drifted resources changes, then updates the body', async () => {
    const body = await openIssue(report());
    // Found on the second page of the listing.
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [otherProjectIssue], {
      link: `<${API}/repos/acme/infra/issues?state=open&labels=terrapin%3Adrift&per_page=100&page=2>; rel="next"`,
    });
    answer(nock(API).get('/repos/acme/infra/issues').query({ ...LIST, page: '2' }), 200, [{ number: 42, title: 'Drift detected: network', body }]);
    answer(nock(API).post('/repos/acme/infra/issues/42/comments'), 201, { id: 1 });
    answer(nock(API).patch('/repos/acme/infra/issues/42'), 200, { number: 42 });

    const resources = ['terraform_data.keep', 'terraform_data.stray'];
    expect(await env().run(activities().reportDrift, report({ sha: SHA2, resources }))).toEqual({ number: 42, created: false, commented: true });
    assertOnly([
      'GET /repos/acme/infra/issues',
      'GET /repos/acme/infra/issues',
      'POST /repos/acme/infra/issues/42/comments',
      'PATCH /repos/acme/infra/issues/42',
    ]);
    expect(calls[2]!.body.body).toMatch(new RegExp(`^Still drifted at ${SHA2}, and the set of drifted resources changed \\(2 now\\)`));
    expect(calls[3]!.body.body).toContain('- `terraform_data.stray`');
  });

  test('a retried attempt does not repeat the comment an earlier attempt posted', async () => {
    const body = await openIssue(report());
    const resources = ['terraform_data.stray'];
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [{ number: 42, title: 'Drift detected: network', body }]);
    // Attempt 1 commented, then failed before editing the body.
    answer(nock(API).post('/repos/acme/infra/issues/42/comments'), 201, { id: 1 });
    answer(nock(API).patch('/repos/acme/infra/issues/42'), 502, { message: 'Bad Gateway' });
    await expect(env().run(activities().reportDrift, report({ sha: SHA2, resources }))).rejects.toMatchObject({ status: 502 });
    const comment = calls[1]!.body.body as string;

    calls = [];
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [{ number: 42, title: 'Drift detected: network', body }]);
    answer(nock(API).get('/repos/acme/infra/issues/42/comments').query(true), 200, [{ id: 1, body: comment }]);
    answer(nock(API).patch('/repos/acme/infra/issues/42'), 200, { number: 42 });
    expect(await env(2).run(activities().reportDrift, report({ sha: SHA2, resources }))).toEqual({ number: 42, created: false, commented: true });
    assertOnly(['GET /repos/acme/infra/issues', 'GET /repos/acme/infra/issues/42/comments', 'PATCH /repos/acme/infra/issues/42']);
  });

  test('a plan too long for an issue is cut at a line, inside its fence, with a note', async () => {
    const long = join(dir, 'long.diff.txt');
    await writeFile(long, Array.from({ length: 3000 }, (_, i) => `+ resource line ${i} ${'x'.repeat(20)}`).join('\n'));
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, []);
    answer(nock(API).get('/repos/acme/infra/labels/terrapin%3Adrift'), 200, { name: 'terrapin:drift' });
    answer(nock(API).post('/repos/acme/infra/issues'), 201, { number: 43 });
    await env().run(activities().reportDrift, report({ planTextFile: long }));
    const body = calls.at(-1)!.body.body as string;
    expect(body.length).toBeLessThanOrEqual(65_536);
    expect(body).toMatch(/x\n```\n\n_Truncated to fit this issue._/);
    expect(body).toContain('<!-- terrapin:drift network -->');
  });
});

describe('closeDrift', () => {
  test('says the drift is gone at the commit and closes the issue', async () => {
    const body = await openIssue(report());
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [otherProjectIssue, { number: 42, title: 'Drift detected: network', body }]);
    answer(nock(API).post('/repos/acme/infra/issues/42/comments'), 201, { id: 2 });
    answer(nock(API).patch('/repos/acme/infra/issues/42'), 200, { number: 42, state: 'closed' });

    expect(await env().run(activities().closeDrift, { repo, project: 'network', sha: SHA3 })).toEqual({ closed: 42 });
    assertOnly(['GET /repos/acme/infra/issues', 'POST /repos/acme/infra/issues/42/comments', 'PATCH /repos/acme/infra/issues/42']);
    expect(calls[1]!.body.body).toContain(`No drift in project \`network\` at ${SHA3}`);
    expect(calls[1]!.body.body).toContain(`<!-- terrapin:drift-resolved:network:${SHA3} -->`);
    expect(calls[2]!.body).toEqual({ state: 'closed', state_reason: 'completed' });
  });

  test('does nothing when no drift issue of the project is open', async () => {
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [otherProjectIssue, pullRequest]);
    expect(await env().run(activities().closeDrift, { repo, project: 'network', sha: SHA3 })).toEqual({});
    assertOnly(['GET /repos/acme/infra/issues']);
  });

  test('finds an issue by its exact title when its marker was edited away', async () => {
    answer(nock(API).get('/repos/acme/infra/issues').query(LIST), 200, [{ number: 9, title: 'Drift detected: network', body: 'edited by hand' }]);
    answer(nock(API).post('/repos/acme/infra/issues/9/comments'), 201, { id: 3 });
    answer(nock(API).patch('/repos/acme/infra/issues/9'), 200, { number: 9 });
    expect(await env().run(activities().closeDrift, { repo, project: 'network', sha: SHA3 })).toEqual({ closed: 9 });
    assertOnly(['GET /repos/acme/infra/issues', 'POST /repos/acme/infra/issues/9/comments', 'PATCH /repos/acme/infra/issues/9']);
  });
});
