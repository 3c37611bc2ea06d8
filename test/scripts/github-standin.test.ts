// The GitHub stand-in, driven by the real Octokit clients (GHE-style base URL), must answer as GitHub does.
import { generateKeyPairSync } from 'node:crypto';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGithubStandin, type GithubStandin, type RecordedCall } from '../../scripts/github-standin.ts';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const SHA = 'a'.repeat(40);
// 4xx answers are the point of several tests; Octokit would log each one.
const log = { debug() {}, info() {}, warn() {}, error() {} };
const repo = { owner: 'acme', repo: 'infra' };
let standin: GithubStandin;
let octokit: Octokit;

// Each test its own stand-in: comments, check runs and calls of one test never show in another's listing.
beforeEach(async () => {
  standin = await startGithubStandin();
  standin.setPullRequest('acme', 'infra', 1, { number: 1, state: 'open', head: { sha: SHA } });
  octokit = new Octokit({ log, baseUrl: standin.baseUrl, authStrategy: createAppAuth, auth: { appId: 1, privateKey, installationId: 42 } });
});
afterEach(() => standin.close());

const status = async (p: Promise<unknown>) => p.then(() => 200, (err: { status?: number }) => err.status);

describe('GitHub stand-in', () => {
  it('issues installation tokens for the app JWT and accepts only those tokens', async () => {
    const auth = (await octokit.auth({ type: 'installation' })) as { token: string };
    expect(auth.token).toMatch(/^ghs_/);
    const tokenCall = standin.calls.find((c) => c.route === 'POST /app/installations/:installation_id/access_tokens');
    expect(tokenCall?.status).toBe(201);
    expect(tokenCall?.path).toBe('/app/installations/42/access_tokens');

    const stranger = new Octokit({ log, baseUrl: standin.baseUrl, auth: 'ghs_not-issued-here' });
    expect(await status(stranger.pulls.get({ ...repo, pull_number: 1 }))).toBe(401);
    const anonymous = new Octokit({ log, baseUrl: standin.baseUrl });
    expect(await status(anonymous.pulls.get({ ...repo, pull_number: 1 }))).toBe(401);
  });

  it('serves pull requests that were set, 404 otherwise', async () => {
    const { data } = await octokit.pulls.get({ ...repo, pull_number: 1 });
    expect(data).toMatchObject({ number: 1, head: { sha: SHA } });
    expect(await status(octokit.pulls.get({ ...repo, pull_number: 2 }))).toBe(404);
  });

  it('reports collaborator permissions, "none" for strangers', async () => {
    standin.setPermission('Alice', 'write');
    const { data } = await octokit.repos.getCollaboratorPermissionLevel({ ...repo, username: 'alice' });
    expect(data.permission).toBe('write');
    expect(data.user?.login).toBe('alice');
    const none = await octokit.repos.getCollaboratorPermissionLevel({ ...repo, username: 'mallory' });
    expect(none.data.permission).toBe('none');
  });

  it('creates, edits, lists (paginated) and reacts to issue comments', async () => {
    const created = await octokit.issues.createComment({ ...repo, issue_number: 1, body: 'plan 1' });
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({ body: 'plan 1', user: { login: 'terrapin[bot]', type: 'Bot' } });
    expect(created.data.node_id).toMatch(/^IC_/);

    const edited = await octokit.issues.updateComment({ ...repo, comment_id: created.data.id, body: 'plan 1 (edited)' });
    expect(edited.data.body).toBe('plan 1 (edited)');

    for (let i = 2; i <= 5; i++) await octokit.issues.createComment({ ...repo, issue_number: 1, body: `plan ${i}` });
    const firstPage = await octokit.issues.listComments({ ...repo, issue_number: 1, per_page: 2 });
    expect(firstPage.data.map((c) => c.body)).toEqual(['plan 1 (edited)', 'plan 2']);
    expect(firstPage.headers.link).toContain('rel="next"');
    const all = await octokit.paginate(octokit.issues.listComments, { ...repo, issue_number: 1, per_page: 2 });
    expect(all.map((c) => c.body)).toEqual(['plan 1 (edited)', 'plan 2', 'plan 3', 'plan 4', 'plan 5']);

    const human = standin.addIssueComment('acme', 'infra', 1, { body: '/approve', login: 'alice' });
    const first = await octokit.reactions.createForIssueComment({ ...repo, comment_id: human.id, content: 'eyes' });
    expect(first.status).toBe(201);
    const again = await octokit.reactions.createForIssueComment({ ...repo, comment_id: human.id, content: 'eyes' });
    expect(again.status).toBe(200);
    expect(again.data.id).toBe(first.data.id);
    expect(standin.comments('acme', 'infra', 1).find((c) => c.id === human.id)?.reactions).toHaveLength(1);
  });

  it('rejects what GitHub rejects on comments', async () => {
    expect(await status(octokit.issues.createComment({ ...repo, issue_number: 99, body: 'x' }))).toBe(404);
    expect(await status(octokit.issues.createComment({ ...repo, issue_number: 1, body: 'x'.repeat(65537) }))).toBe(422);
    expect(await status(octokit.issues.updateComment({ ...repo, comment_id: 1, body: 'x' }))).toBe(404);
    const c = await octokit.issues.createComment({ ...repo, issue_number: 1, body: 'x' });
    expect(await status(octokit.reactions.createForIssueComment({ ...repo, comment_id: c.data.id, content: 'tada' as 'hooray' }))).toBe(422);
    expect(await status(octokit.issues.updateComment({ owner: 'acme', repo: 'other', comment_id: c.data.id, body: 'x' }))).toBe(404);
  });

  it('minimizes comments through GraphQL at the GHE endpoint', async () => {
    const c = await octokit.issues.createComment({ ...repo, issue_number: 1, body: 'old plan' });
    const result = await octokit.graphql<{ minimizeComment: { minimizedComment: { isMinimized: boolean; minimizedReason: string } } }>(
      'mutation($id: ID!) { minimizeComment(input: { subjectId: $id, classifier: OUTDATED }) { minimizedComment { isMinimized minimizedReason } } }',
      { id: c.data.node_id },
    );
    expect(result.minimizeComment.minimizedComment).toEqual({ isMinimized: true, minimizedReason: 'outdated' });
    expect(standin.comments('acme', 'infra', 1).find((x) => x.id === c.data.id)?.minimizedReason).toBe('outdated');
    expect(standin.calls.at(-1)).toMatchObject({ method: 'POST', path: '/graphql', status: 200 });

    await expect(
      octokit.graphql('mutation { minimizeComment(input: { subjectId: "IC_nope", classifier: OUTDATED }) { clientMutationId } }'),
    ).rejects.toThrow(/Could not resolve to a node/);
  });

  it('creates and updates check runs, and lists the latest per name for a commit', async () => {
    const created = await octokit.checks.create({ ...repo, name: 'terrapin/plan', head_sha: SHA, status: 'in_progress', external_id: 'pr:acme/infra#1' });
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({ name: 'terrapin/plan', status: 'in_progress', conclusion: null, head_sha: SHA });

    const done = await octokit.checks.update({
      ...repo,
      check_run_id: created.data.id,
      conclusion: 'success',
      output: { title: 'Plan: 1 to add', summary: 'ok' },
      actions: [{ label: 'Approve', description: 'Approve these plans', identifier: 'approve' }],
    });
    expect(done.data).toMatchObject({ status: 'completed', conclusion: 'success', output: { title: 'Plan: 1 to add' } });
    expect(done.data.completed_at).toBeTruthy();

    const rerun = await octokit.checks.create({ ...repo, name: 'terrapin/plan', head_sha: SHA, status: 'queued' });
    await octokit.checks.create({ ...repo, name: 'terrapin/apply', head_sha: SHA, status: 'queued' });
    const latest = await octokit.checks.listForRef({ ...repo, ref: SHA, check_name: 'terrapin/plan' });
    expect(latest.data.check_runs.map((c) => c.id)).toEqual([rerun.data.id]);
    const everyRun = await octokit.checks.listForRef({ ...repo, ref: SHA, filter: 'all' });
    expect(everyRun.data.total_count).toBe(3);
    expect((await octokit.checks.listForRef({ ...repo, ref: 'b'.repeat(40) })).data.total_count).toBe(0);
  });

  it('rejects invalid check runs and leaves the run unchanged', async () => {
    const run = await octokit.checks.create({ ...repo, name: 'terrapin/apply', head_sha: SHA });
    const tooMany = Array.from({ length: 4 }, (_, i) => ({ label: `b${i}`, description: 'd', identifier: `b${i}` }));
    expect(await status(octokit.checks.update({ ...repo, check_run_id: run.data.id, actions: tooMany }))).toBe(422);
    const longLabel = [{ label: 'x'.repeat(21), description: 'd', identifier: 'x' }];
    expect(await status(octokit.checks.update({ ...repo, check_run_id: run.data.id, actions: longLabel }))).toBe(422);
    expect(await status(octokit.checks.update({ ...repo, check_run_id: run.data.id, status: 'completed' }))).toBe(422);
    expect(await status(octokit.checks.create({ ...repo, name: 'x', head_sha: 'not-a-sha' }))).toBe(422);
    expect(await status(octokit.checks.update({ ...repo, check_run_id: 1, status: 'in_progress' }))).toBe(404);
    expect(standin.checkRuns('acme', 'infra').find((c) => c.id === run.data.id)).toMatchObject({ status: 'queued', actions: [] });
  });

  it('answers unknown routes with 404, records them and tells listeners', async () => {
    await octokit.auth({ type: 'installation' }); // the token first: the listener hears only the call below
    const seen: RecordedCall[] = [];
    const off = standin.onCall((call) => seen.push(call));
    expect(await status(octokit.repos.get(repo))).toBe(404);
    off();
    await status(octokit.repos.get(repo));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'GET', path: '/repos/acme/infra', status: 404, route: undefined });
    expect(standin.calls.filter((c) => c.path === '/repos/acme/infra')).toHaveLength(2);
  });
});

describe('GitHub stand-in: strict expectations', () => {
  const COMMENTS = 'POST /repos/:owner/:repo/issues/:issue_number/comments';
  const REACTIONS = 'POST /repos/:owner/:repo/issues/comments/:comment_id/reactions';

  it('passes when every expected call came, the expected number of times, and nothing else', async () => {
    await octokit.issues.createComment({ ...repo, issue_number: 1, body: 'warm-up' }); // before expectExactly: not looked at
    standin.expectExactly([
      { route: COMMENTS, path: '/repos/acme/infra/issues/1/comments', body: (b) => b.body === 'plan', label: 'the plan comment' },
      { route: 'GET /repos/:owner/:repo/pulls/:pull_number', times: 2 },
    ]);
    await octokit.pulls.get({ ...repo, pull_number: 1 });
    await octokit.issues.createComment({ ...repo, issue_number: 1, body: 'plan' });
    await octokit.pulls.get({ ...repo, pull_number: 1 });
    await standin.settled(5_000);
    expect(standin.verifyCalls()).toEqual({
      missing: [],
      surplus: [],
      unexpected: [],
      counts: [
        { label: 'the plan comment', count: 1 },
        { label: 'GET /repos/:owner/:repo/pulls/:pull_number', count: 2 },
      ],
    });
    expect(() => standin.assertExactly()).not.toThrow();
  });

  it('fails on a missing call, a call beyond its count, a call nothing expected and an unknown route', async () => {
    const human = standin.addIssueComment('acme', 'infra', 1, { body: '/plan', login: 'alice' });
    standin.expectExactly([
      { route: COMMENTS, body: (b) => b.body === 'plan', label: 'the plan comment' },
      { route: REACTIONS, label: 'the 👀' },
      { route: 'GET /repos/:owner/:repo/pulls/:pull_number', times: { min: 1, max: 1 } },
    ]);
    await octokit.issues.createComment({ ...repo, issue_number: 1, body: 'not the plan' });
    await octokit.pulls.get({ ...repo, pull_number: 1 });
    await octokit.pulls.get({ ...repo, pull_number: 1 });
    await status(octokit.repos.get(repo));
    await expect(standin.settled(300)).rejects.toThrow(/calls still expected after 300 ms:\nmissing: the plan comment: 0 of 1\nmissing: the 👀: 0 of 1/);
    const report = standin.verifyCalls();
    expect(report.missing).toEqual(['the plan comment: 0 of 1', 'the 👀: 0 of 1']);
    expect(report.surplus).toEqual(['GET /repos/:owner/:repo/pulls/:pull_number: 2, expected 1']);
    expect(report.unexpected).toEqual(['POST /repos/acme/infra/issues/1/comments → 201', 'GET /repos/acme/infra → 404 (no such route in the stand-in)']);
    expect(() => standin.assertExactly()).toThrow(/unexpected: GET \/repos\/acme\/infra → 404/);
    await octokit.reactions.createForIssueComment({ ...repo, comment_id: human.id, content: 'eyes' });
    expect(standin.verifyCalls().missing).toEqual(['the plan comment: 0 of 1']);
  });

  it('installation tokens are allowed any number of times unless listed; faults that changed nothing count only if asked', async () => {
    standin.expectExactly([{ route: 'GET /repos/:owner/:repo/pulls/:pull_number' }]);
    standin.setFaults({ rate: 1, seed: 3, retryAfter: 0 });
    const faulted = await status(octokit.pulls.get({ ...repo, pull_number: 1 }));
    standin.setFaults(undefined);
    const fault = standin.calls.at(-1)!.fault;
    expect(faulted).not.toBe(200);
    await octokit.pulls.get({ ...repo, pull_number: 1 });
    // A 502-after "made its change" (here a read): it counts, and the retry is one too many.
    expect(standin.verifyCalls().surplus).toEqual(fault === '502-after' ? ['GET /repos/:owner/:repo/pulls/:pull_number: 2, expected 1'] : []);
    expect(standin.calls.some((c) => c.route === 'POST /app/installations/:installation_id/access_tokens')).toBe(true);

    const strict = await startGithubStandin();
    try {
      strict.setPullRequest('acme', 'infra', 1, { number: 1, state: 'open' });
      strict.expectExactly([{ route: 'GET /repos/:owner/:repo/pulls/:pull_number' }], { anyTokens: false });
      const client = new Octokit({ log, baseUrl: strict.baseUrl, authStrategy: createAppAuth, auth: { appId: 1, privateKey, installationId: 42 } });
      await client.pulls.get({ ...repo, pull_number: 1 });
      expect(strict.verifyCalls().unexpected).toEqual(['POST /app/installations/42/access_tokens → 201']);
    } finally {
      await strict.close();
    }
  });
});
