// The bad-input corpus (test/fixtures/bad-input/webhooks.yml): malformed and hostile deliveries through the
// real HTTP endpoint, each with the answer, the reply on the PR (or none) and the 👀 it must produce. The
// service must keep serving: a normal command is answered after the whole corpus. The stand-in holds the
// run to the calls the cases expect and no other; a case that expects nothing is done once its PR's
// workflow handled it, or once the app answered without starting one.
import { createHmac, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startWebhookServer, WEBHOOK_PATH, type WebhookServer } from '../../app/http.ts';
import { WorkflowNotFoundError } from '@temporalio/client';
import { startGithubStandin, type CallExpectation, type GithubStandin } from '../../scripts/github-standin.ts';
import { prWorkflowId } from '../../shared/contracts.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

interface Case {
  name: string;
  base: 'comment' | 'pr' | 'raw';
  body?: string;
  repeatLine?: { line: string; times: number; sameLine?: boolean };
  raw?: string;
  rawHex?: string;
  event?: string;
  delete?: string[];
  set?: Record<string, unknown>;
  signature?: 'valid' | 'none' | 'wrong' | 'other-secret';
  headers?: Record<string, string | null>;
  expect: { status: number; reply: string | null; reaction?: boolean; check?: { conclusion: string; title: string } };
}

const corpus = parse(await readFile(new URL('../fixtures/bad-input/webhooks.yml', import.meta.url), 'utf8')) as { cases: Case[] };
const BOT = 'terrapin[bot]';

let h: Harness;
let standin: GithubStandin;
let web: WebhookServer;
let repo: FixtureRepo;
let baseSha: string;
let headSha: string;

beforeAll(async () => {
  h = await startHarness();
  standin = await startGithubStandin({ botLogin: BOT });
  standin.setPermission('bob', 'write');
  await h.startWorker({ github: { baseUrl: standin.baseUrl } });
  web = await startWebhookServer({ config: { ...h.config, github: { ...h.config.github, baseUrl: standin.baseUrl } }, client: h.env.client, logger: pino({ level: 'silent' }), port: 0 });
  repo = await createFixtureRepo({ 'main.tf': 'resource "terraform_data" "a" {}\n' });
  baseSha = await repo.head();
  headSha = await repo.commit({ 'main.tf': 'resource "terraform_data" "a" {}\nresource "terraform_data" "b" {}\n' }, { branch: 'feature' });
});
afterAll(async () => {
  await web?.close();
  await h?.teardown();
  await standin?.close();
  await repo?.cleanup();
});

function setPath(obj: Record<string, any>, path: string, value: unknown, remove = false): void {
  const keys = path.split('.');
  let at = obj;
  for (const k of keys.slice(0, -1)) at = at?.[k];
  if (at === undefined || at === null) return;
  if (remove) delete at[keys.at(-1)!];
  else at[keys.at(-1)!] = value;
}

async function send(c: Case, number: number): Promise<{ status: number; commentId?: number; deliveryId: string }> {
  const pr: TestPr = { owner: 'acme', repo: 'corpus', number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha, author: 'alice' };
  standin.setPullRequest('acme', 'corpus', number, { number, state: 'open', draft: false, head: { sha: headSha, ref: 'feature', repo: { clone_url: repo.cloneUrl } }, base: { sha: baseSha, ref: 'main', repo: { clone_url: repo.cloneUrl } }, user: { login: 'alice' }, labels: [] });
  let text = c.body ?? '';
  if (c.repeatLine) text += Array.from({ length: c.repeatLine.times }, () => c.repeatLine!.line).join(c.repeatLine.sameLine ? '' : '\n');
  let body: Buffer;
  let commentId: number | undefined;
  if (c.base === 'raw') {
    body = c.rawHex ? Buffer.from(c.rawHex, 'hex') : Buffer.from(c.raw ?? '');
  } else {
    let payload: Record<string, any>;
    if (c.base === 'comment') {
      commentId = standin.addIssueComment('acme', 'corpus', number, { body: text, login: 'bob' }).id;
      payload = issueCommentEvent(pr, text, { login: 'bob', commentId });
    } else {
      payload = pullRequestEvent('opened', pr);
    }
    for (const p of c.delete ?? []) setPath(payload, p, undefined, true);
    for (const [p, v] of Object.entries(c.set ?? {})) setPath(payload, p, v);
    body = Buffer.from(JSON.stringify(payload));
  }
  const deliveryId = randomUUID();
  const secret = c.signature === 'other-secret' ? 'not-the-secret' : h.config.github.webhookSecret;
  const signature = c.signature === 'wrong' ? `sha256=${'0'.repeat(64)}` : `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-github-event': c.event ?? (c.base === 'pr' ? 'pull_request' : 'issue_comment'),
    'x-github-delivery': deliveryId,
    ...(c.signature === 'none' ? {} : { 'x-hub-signature-256': signature }),
  };
  for (const [k, v] of Object.entries(c.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  const res = await fetch(`http://127.0.0.1:${web.port}${WEBHOOK_PATH}`, { method: 'POST', headers, body: new Uint8Array(body) });
  await res.text();
  return { status: res.status, commentId, deliveryId };
}

const ROUTE = {
  pull: 'GET /repos/:owner/:repo/pulls/:pull_number',
  permission: 'GET /repos/:owner/:repo/collaborators/:username/permission',
  reaction: 'POST /repos/:owner/:repo/issues/comments/:comment_id/reactions',
  comment: 'POST /repos/:owner/:repo/issues/:issue_number/comments',
  createCheck: 'POST /repos/:owner/:repo/check-runs',
  updateCheck: 'PATCH /repos/:owner/:repo/check-runs/:check_run_id',
};

/** Calls a delivery that reached its PR's workflow makes: a comment's workflow reads its PR and the sender's permission. */
function expectedCalls(c: Case, number: number, commentId: number | undefined): CallExpectation[] {
  const reaction = c.expect.reaction ?? c.expect.reply !== null;
  return [
    ...(c.base === 'comment' ? [{ route: ROUTE.pull, path: `/repos/acme/corpus/pulls/${number}` }] : []),
    ...(c.base === 'comment' ? [{ route: ROUTE.permission, path: '/repos/acme/corpus/collaborators/bob/permission', label: `${c.name}: bob's permission` }] : []),
    ...(reaction && commentId !== undefined ? [{ route: ROUTE.reaction, path: `/repos/acme/corpus/issues/comments/${commentId}/reactions`, body: (b: { content?: string }) => b.content === 'eyes', label: `${c.name}: 👀` }] : []),
    ...(c.expect.reply !== null
      ? [{ route: ROUTE.comment, path: `/repos/acme/corpus/issues/${number}/comments`, body: (b: { body?: string }) => new RegExp(c.expect.reply!).test(b.body ?? ''), label: `${c.name}: reply /${c.expect.reply}/` }]
      : []),
    ...(c.expect.check
      ? [
          { route: ROUTE.createCheck, body: (b: any) => b.external_id === prWorkflowId('acme', 'corpus', number) && b.name === 'terrapin/plan' && b.status === 'in_progress' && b.head_sha === headSha, label: `${c.name}: plan check created` },
          {
            route: ROUTE.updateCheck,
            body: (b: any) => b.external_id === prWorkflowId('acme', 'corpus', number) && b.status === 'completed' && b.conclusion === c.expect.check!.conclusion && new RegExp(c.expect.check!.title).test(b.output?.title ?? ''),
            label: `${c.name}: plan check ${c.expect.check.conclusion}`,
          },
        ]
      : []),
  ];
}

describe('bad-input corpus', () => {
  test(`${corpus.cases.length} malformed deliveries: each answered as expected, and the service keeps serving`, async () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(40);
    // From here on every GitHub call must be one the cases below expect.
    standin.expectExactly([]);
    const sent = await Promise.all(corpus.cases.map(async (c, i) => ({ c, number: 100 + i, ...(await send(c, 100 + i)) })));
    const wrongStatus = sent.filter((s) => s.status !== s.c.expect.status).map((s) => `${s.c.name}: ${s.status}, expected ${s.c.expect.status}`);
    expect(wrongStatus).toEqual([]);

    // Each case has a PR number of its own. The app answers once every handler has finished, so a delivery
    // it signalled is in its PR's workflow by then: wait until that workflow has handled it. A PR that has
    // no workflow after the answer was never signalled, and nothing can come of the delivery.
    const route: Record<string, 'workflow' | 'app'> = {};
    for (const s of sent) {
      const exists = await h.env.client.workflow
        .getHandle(prWorkflowId('acme', 'corpus', s.number))
        .describe()
        .then(() => true, (err: unknown) => (err instanceof WorkflowNotFoundError ? false : Promise.reject(err)));
      route[s.c.name] = exists ? 'workflow' : 'app';
      // A reply can only come from the PR's workflow.
      if (s.c.expect.reply !== null || exists) await h.waitHandled('acme', 'corpus', s.number, s.deliveryId, 120_000);
      if (exists || s.c.expect.reply !== null) standin.expectExactly(expectedCalls(s.c, s.number, s.commentId));
    }

    const botReplies = (n: number) => standin.comments('acme', 'corpus', n).filter((c) => c.user.login === BOT);
    const wrong: string[] = [];
    for (const s of sent) {
      const replies = botReplies(s.number).map((r) => r.body);
      if (s.c.expect.reply === null && replies.length > 0) wrong.push(`${s.c.name}: unexpected reply ${JSON.stringify(replies[0]!.slice(0, 200))}`);
      if (s.c.expect.reply !== null && !replies.some((r) => new RegExp(s.c.expect.reply!).test(r))) wrong.push(`${s.c.name}: no reply matching /${s.c.expect.reply}/ in ${JSON.stringify(replies.map((r) => r.slice(0, 200)))}`);
      const reaction = s.c.expect.reaction ?? s.c.expect.reply !== null;
      if (s.commentId !== undefined && s.c.base === 'comment' && s.status === 200) {
        const got = standin.comments('acme', 'corpus', s.number).find((c) => c.id === s.commentId)!.reactions.length > 0;
        if (got !== reaction) wrong.push(`${s.c.name}: 👀 ${got ? 'given' : 'missing'}`);
      }
      const checks = standin.checkRuns('acme', 'corpus').filter((r) => r.external_id === prWorkflowId('acme', 'corpus', s.number)).map((r) => `${r.name}:${r.conclusion}:${r.output.title}`);
      const check = s.c.expect.check;
      if (check ? !(checks.length === 1 && checks[0]!.startsWith(`terrapin/plan:${check.conclusion}:`) && new RegExp(check.title).test(checks[0]!.split(':').slice(2).join(':'))) : checks.length > 0) {
        wrong.push(`${s.c.name}: check runs ${JSON.stringify(checks)}, expected ${check ? `terrapin/plan ${check.conclusion} /${check.title}/` : 'none'}`);
      }
    }
    expect(wrong).toEqual([]);
    // A rejected delivery (4xx) never reached a workflow.
    expect(sent.filter((s) => s.status !== 200 && route[s.c.name] !== 'app').map((s) => s.c.name)).toEqual([]);

    // Still serving.
    expect((await fetch(`http://127.0.0.1:${web.port}/healthz`)).status).toBe(200);
    const help: Case = { name: 'after', base: 'comment', body: '/help', expect: { status: 200, reply: 'Terrapin commands' } };
    const after = await send(help, 99);
    expect(after.status).toBe(200);
    standin.expectExactly(expectedCalls(help, 99, after.commentId));
    await h.waitHandled('acme', 'corpus', 99, after.deliveryId, 60_000);
    expect(botReplies(99).map((r) => r.body.includes('Terrapin commands'))).toEqual([true]);
    // Every delivery that reached a workflow has been handled: no call is still to come, and none other came.
    standin.assertExactly();

    const reached = sent.filter((s) => route[s.c.name] === 'workflow').length;
    console.log(
      `bad-input corpus: ${corpus.cases.length} webhook cases, each with the expected HTTP status, reply, 👀 and plan check run (or none of them); ` +
        `${reached} reached their PR's workflow and were handled, ${corpus.cases.length - reached} never reached one; no other GitHub call; service still serving`,
    );
  }, 300_000);
});
