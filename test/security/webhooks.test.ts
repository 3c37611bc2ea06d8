// Attacks on the webhook endpoint, as real HTTP requests to the real server (real HMAC signatures,
// real Temporal behind it): a replayed signed body, bad signatures streamed slowly, bodies over the cap,
// floods of unverified bodies, and bodies that must not be parsed before their signature holds. Each
// asserts the answer and that no signal reached Temporal (or, for the replay, that nothing more happened).
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { chunkedPost } from '../helpers/chunked-post.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import nock from 'nock';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startWebhookServer, WEBHOOK_PATH, type WebhookServer } from '../../app/http.ts';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

let h: Harness;
let web: WebhookServer;
let tmp: string;
let repo: FixtureRepo;
let secret: string;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  web = await startWebhookServer({ config: h.config, client: h.env.client, logger: pino({ level: 'silent' }), port: 0 });
  secret = h.config.github.webhookSecret;
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-sec-webhooks-'));
});
afterAll(async () => {
  await web?.close();
  await h?.teardown();
  await repo?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const sign = (body: string | Buffer, key = secret) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;

function post(event: string, body: string | Buffer, opts: { id?: string; signature?: string } = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${web.port}${WEBHOOK_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': opts.id ?? randomUUID(), 'x-hub-signature-256': opts.signature ?? sign(body) },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
}

/** A POST on a raw socket, its chunked body in pieces `gapMs` apart, or left open (`hold`); `done` is the status. */
function stream(headers: Record<string, string>, pieces: Array<string | Buffer>, opts: { gapMs?: number; hold?: boolean } = {}) {
  const post = chunkedPost(web.port, WEBHOOK_PATH, headers, pieces, opts);
  return { ...post, done: post.done.then((r) => r.status) };
}

const exists = (workflowId: string) =>
  h.env.client.workflow
    .getHandle(workflowId)
    .describe()
    .then(() => true, () => false);

/** A pull_request.opened payload of a PR no test has touched. */
function freshPr(number: number): { body: string; workflowId: string } {
  const pr: TestPr = { owner: 'acme', repo: 'hooks', number, installationId: 42, cloneUrl: 'file:///nonexistent', headSha: 'a'.repeat(40), headRef: 'f', baseRef: 'main', baseSha: 'b'.repeat(40), author: 'alice' };
  return { body: JSON.stringify(pullRequestEvent('opened', pr)), workflowId: prWorkflowId('acme', 'hooks', number) };
}

describe('webhook endpoint under attack', () => {
  test('a captured signed /approve re-sent over HTTP with a new delivery id: accepted, but nothing more happens', async () => {
    const stateFile = join(tmp, 'replayhttp.tfstate');
    repo = await createFixtureRepo({
      'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' } } }),
      '.terrapin.yml': 'defaults:\n  applyRequirements:\n    - approved: { count: 2 }\n',
    });
    const dir = await mkdtemp(join(tmp, 'apply-'));
    await execa('git', ['clone', '-q', repo.cloneUrl, dir]);
    for (const args of [['init', '-input=false'], ['apply', '-auto-approve', '-input=false']]) await execa('terraform', args, { cwd: dir });
    const before = await readFile(stateFile, 'utf8');
    const headSha = await repo.commit({ 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' }, b: {} } }) }, { branch: 'feature' });
    const pr: TestPr = { owner: 'acme', repo: 'replayhttp', number: 1, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head(), author: 'alice' };
    const gh = new GithubMock('acme', 'replayhttp');
    gh.createCheckRun(CHECK_PLAN, 'in_progress').comment(1, /Terrapin plan/).updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success' }).createCheckRun(CHECK_APPLY, 'queued');
    expect((await post('pull_request', JSON.stringify(pullRequestEvent('opened', pr)))).status).toBe(200);
    await gh.settled();
    await h.waitFor('acme', 'replayhttp', 1, (st) => st.plan?.status === 'ready');

    const captured = JSON.stringify(issueCommentEvent(pr, '/approve', { login: 'bob', commentId: 1101 }));
    const signature = sign(captured);
    gh.reaction(1101).permission('bob', 'write').prCommits(1).comment(1, /Approval by @bob recorded/);
    expect((await post('issue_comment', captured, { signature })).status).toBe(200);
    await gh.settled();
    // The same signed bytes, another delivery id: a valid delivery as far as HTTP goes, a no-op for the PR.
    expect((await post('issue_comment', captured, { signature })).status).toBe(200);
    gh.reaction(1102).permission('erin', 'write').comment(1, /Terrapin commands/);
    expect((await post('issue_comment', JSON.stringify(issueCommentEvent(pr, '/help', { login: 'erin', commentId: 1102 })))).status).toBe(200);
    await gh.settled();
    await h.waitFor('acme', 'replayhttp', 1, (st) => st.queued === 0);
    expect((await h.status('acme', 'replayhttp', 1)).approvals).toEqual(['bob']);
    expect(gh.comments().filter((b) => b.includes('Approval by @bob recorded'))).toHaveLength(1);
    expect(await readFile(stateFile, 'utf8')).toBe(before);
    gh.assertNoUnexpected();
  });

  describe('bodies before their signature holds', () => {
    // nock's interceptors hold a socket's bytes until the request is complete: a slow sender would not be slow.
    beforeAll(() => void nock.restore());
    afterAll(() => void nock.activate());

    test('a body with a bad signature streamed slowly: 401 once it ends, and no signal', async () => {
      const { body, workflowId } = freshPr(2);
      const pieces = Array.from({ length: 6 }, (_, i) => body.slice((i * body.length) / 6, ((i + 1) * body.length) / 6));
      const slow = stream({ 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(body, 'guessed-secret') }, pieces, { gapMs: 200 });
      expect(await slow.done).toBe(401);
      expect(await exists(workflowId)).toBe(false);
    });

    test('a body over 25 MB: 413, declared or streamed, and no signal', async () => {
      const { body, workflowId } = freshPr(3);
      const huge = Buffer.from(`${body.slice(0, -1)},"padding":"${'x'.repeat(25 * 1024 * 1024)}"}`);
      // Declared: answered from the headers, before any of the body is read.
      const declared = stream({ 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(huge), 'content-length': String(huge.length), 'transfer-encoding': '' }, [], { hold: true });
      expect(await declared.done).toBe(413);
      const chunk = huge.subarray(0, 1024 * 1024);
      const streamed = stream({ 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(huge) }, Array.from({ length: 27 }, () => chunk));
      expect(await streamed.done).toBe(413);
      expect(await exists(workflowId)).toBe(false);
    });

    test('too many unverified bodies in flight: 503 at once, no signal; the slots free up', async () => {
      const { body, workflowId } = freshPr(4);
      const held = Array.from({ length: 32 }, () => stream({ 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(body) }, [body.slice(0, 10)], { hold: true }));
      await Promise.all(held.map((x) => x.written));
      // Once all 32 are inside the server, a probe (bad signature: never signalled) is turned away unread.
      const deadline = Date.now() + 20_000;
      while ((await post('pull_request', '{}', { signature: sign('{}', 'wrong') })).status !== 503) {
        if (Date.now() > deadline) throw new Error('the held bodies never reached the server');
      }
      const refused = await post('pull_request', body);
      expect(refused.status).toBe(503);
      expect(await exists(workflowId)).toBe(false);
      for (const x of held) x.finish();
      // Each held body ends after 10 bytes: its signature (of the whole body) does not match.
      expect(new Set(await Promise.all(held.map((x) => x.done)))).toEqual(new Set([401]));
      expect((await post('pull_request', '{}', { signature: sign('{}', 'wrong') })).status).toBe(401);
    });

    test('nothing is decoded or parsed before the signature holds: bad JSON and bad UTF-8 with a wrong signature are 401', async () => {
      expect((await post('pull_request', '{"not json', { signature: sign('{"not json', 'wrong') })).status).toBe(401);
      const notUtf8 = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
      expect((await post('pull_request', notUtf8, { signature: sign(notUtf8, 'wrong') })).status).toBe(401);
      // With the right signature the same bodies reach the parser, and are refused there.
      expect((await post('pull_request', '{"not json')).status).toBe(400);
      expect((await post('pull_request', notUtf8)).status).toBe(400);
    });
  });
});
