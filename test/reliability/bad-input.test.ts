// The bad-input corpus (test/fixtures/bad-input/webhooks.yml): malformed and hostile deliveries through the
// real HTTP endpoint, each with the answer, the reply on the PR (or none) and the 👀 it must produce. The
// service must keep serving: a normal command is answered after the whole corpus.
import { createHmac, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startWebhookServer, WEBHOOK_PATH, type WebhookServer } from '../../app/http.ts';
import { startGithubStandin, type GithubStandin } from '../../scripts/github-standin.ts';
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
  expect: { status: number; reply: string | null; reaction?: boolean };
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

async function send(c: Case, number: number): Promise<{ status: number; commentId?: number }> {
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
  const secret = c.signature === 'other-secret' ? 'not-the-secret' : h.config.github.webhookSecret;
  const signature = c.signature === 'wrong' ? `sha256=${'0'.repeat(64)}` : `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-github-event': c.event ?? (c.base === 'pr' ? 'pull_request' : 'issue_comment'),
    'x-github-delivery': randomUUID(),
    ...(c.signature === 'none' ? {} : { 'x-hub-signature-256': signature }),
  };
  for (const [k, v] of Object.entries(c.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  const res = await fetch(`http://127.0.0.1:${web.port}${WEBHOOK_PATH}`, { method: 'POST', headers, body: new Uint8Array(body) });
  await res.text();
  return { status: res.status, commentId };
}

describe('bad-input corpus', () => {
  test(`${corpus.cases.length} malformed deliveries: each answered as expected, and the service keeps serving`, async () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(40);
    const sent = await Promise.all(corpus.cases.map(async (c, i) => ({ c, number: 100 + i, ...(await send(c, 100 + i)) })));
    const wrongStatus = sent.filter((s) => s.status !== s.c.expect.status).map((s) => `${s.c.name}: ${s.status}, expected ${s.c.expect.status}`);
    expect(wrongStatus).toEqual([]);

    const expectingReply = sent.filter((s) => s.c.expect.reply !== null);
    const botReplies = (n: number) => standin.comments('acme', 'corpus', n).filter((c) => c.user.login === BOT);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && expectingReply.some((s) => !botReplies(s.number).some((r) => new RegExp(s.c.expect.reply!).test(r.body)))) {
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 2000)); // replies that should not exist would have arrived by now
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
    }
    expect(wrong).toEqual([]);

    // Still serving.
    expect((await fetch(`http://127.0.0.1:${web.port}/healthz`)).status).toBe(200);
    const after = await send({ name: 'after', base: 'comment', body: '/help', expect: { status: 200, reply: null } }, 99);
    expect(after.status).toBe(200);
    const until = Date.now() + 60_000;
    while (Date.now() < until && !botReplies(99).some((r) => r.body.includes('Terrapin commands'))) await new Promise((r) => setTimeout(r, 200));
    expect(botReplies(99).map((r) => r.body.includes('Terrapin commands'))).toEqual([true]);
    console.log(`bad-input corpus: ${corpus.cases.length} webhook cases (plus ${37} invalid .terrapin.yml fixtures in test/fixtures/repo-config/invalid), all answered as expected; service still serving`);
  }, 300_000);
});
