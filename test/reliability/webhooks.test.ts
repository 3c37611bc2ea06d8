// Webhooks under load, through the real HTTP endpoint with real signatures: 200 comment commands over 20
// PRs sent at once, some of them delivered three times. Every command must be answered exactly once
// (one 👀, one reply), and nothing may be lost.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import pino from 'pino';
import { startWebhookServer, WEBHOOK_PATH, type WebhookServer } from '../../app/http.ts';
import { startGithubStandin, type GithubStandin } from '../../scripts/github-standin.ts';
import { sendWebhook } from '../../scripts/webhook-deliveries.ts';
import { issueCommentEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const PRS = 20;
const PER_PR = 10;
const TRIPLED = 20;
const BOT = 'terrapin[bot]';

let h: Harness;
let standin: GithubStandin;
let web: WebhookServer;

beforeAll(async () => {
  h = await startHarness();
  standin = await startGithubStandin({ botLogin: BOT });
  await h.startWorker({ github: { baseUrl: standin.baseUrl } });
  web = await startWebhookServer({
    config: { ...h.config, github: { ...h.config.github, baseUrl: standin.baseUrl } },
    client: h.env.client,
    logger: pino({ level: 'silent' }),
    port: 0,
  });
});
afterAll(async () => {
  await web?.close();
  await h?.teardown();
  await standin?.close();
});

test(`${PRS * PER_PR} concurrent commands over ${PRS} PRs (${TRIPLED} delivered three times): each answered exactly once`, async () => {
  const deliveries: Array<{ id: string; event: string; payload: unknown; times: number }> = [];
  // A writer: someone who may run no command is answered once per PR, not once per command.
  standin.setPermission('carol', 'write');
  for (let n = 1; n <= PRS; n++) {
    const pr: TestPr = { owner: 'acme', repo: 'busy', number: n, installationId: 42, cloneUrl: 'https://github.invalid/acme/busy.git', headSha: 'a'.repeat(40), headRef: `f${n}`, baseRef: 'main', baseSha: 'b'.repeat(40), author: 'alice' };
    standin.setPullRequest('acme', 'busy', n, { number: n, state: 'open', head: { sha: pr.headSha, ref: pr.headRef }, base: { sha: pr.baseSha, ref: 'main' }, user: { login: 'alice' } });
    for (let i = 0; i < PER_PR; i++) {
      const c = standin.addIssueComment('acme', 'busy', n, { body: '/help', login: 'carol' });
      deliveries.push({ id: randomUUID(), event: 'issue_comment', payload: issueCommentEvent(pr, '/help', { login: 'carol', commentId: c.id }), times: deliveries.length < TRIPLED ? 3 : 1 });
    }
  }
  const url = `http://127.0.0.1:${web.port}${WEBHOOK_PATH}`;
  const sent = deliveries.flatMap((d) => Array.from({ length: d.times }, () => sendWebhook({ url, secret: h.config.github.webhookSecret, event: d.event, payload: d.payload, appId: h.config.github.appId, deliveryId: d.id })));
  const answers = await Promise.all(sent);
  expect(answers.filter((a) => a.status >= 300).map((a) => `${a.status} ${a.body}`)).toEqual([]);

  const replied = () => standin.comments('acme', 'busy').filter((c) => c.user.login === BOT).length;
  const deadline = Date.now() + 180_000;
  while (replied() < deliveries.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  await new Promise((r) => setTimeout(r, 1000)); // anything extra would arrive now

  const bot = standin.comments('acme', 'busy').filter((c) => c.user.login === BOT);
  const markers = bot.map((c) => /<!-- terrapin:(\S+) -->/.exec(c.body)?.[1]);
  expect(new Set(markers).size).toBe(markers.length);
  expect(markers.sort()).toEqual(deliveries.map((d) => `reply-${d.id}:0`).sort());
  const commands = standin.comments('acme', 'busy').filter((c) => c.user.login === 'carol');
  expect(commands.map((c) => c.reactions.map((r) => r.content).join(',')).filter((r) => r !== 'eyes')).toEqual([]);
  // GitHub would answer a repeated reaction with the existing one: count the calls, not just the reactions.
  expect(standin.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/reactions')).length).toBe(deliveries.length);
  console.log(`webhooks: ${sent.length} deliveries (${deliveries.length} commands, ${TRIPLED} sent three times) over ${PRS} PRs; ${bot.length} replies, ${commands.length} 👀; lost 0, duplicated 0`);
}, 300_000);
