// Webhooks under load, through the real HTTP endpoint with real signatures: 200 comment commands over 20
// PRs sent at once, some of them delivered three times. Every command must be answered exactly once
// (one 👀, one reply), and nothing may be lost. The stand-in holds the run to every call expected and no
// other; that nothing more comes is known once a later marker command on each PR has been handled.
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

interface Delivery {
  id: string;
  pr: number;
  commentId: number;
  event: string;
  payload: unknown;
  times: number;
}

test(`${PRS * PER_PR} concurrent commands over ${PRS} PRs (${TRIPLED} delivered three times): each answered exactly once`, async () => {
  const deliveries: Delivery[] = [];
  const prs: TestPr[] = [];
  // A writer: someone who may run no command is answered once per PR, not once per command.
  standin.setPermission('carol', 'write');
  const command = (pr: TestPr, times: number): Delivery => {
    const c = standin.addIssueComment('acme', 'busy', pr.number, { body: '/help', login: 'carol' });
    return { id: randomUUID(), pr: pr.number, commentId: c.id, event: 'issue_comment', payload: issueCommentEvent(pr, '/help', { login: 'carol', commentId: c.id }), times };
  };
  for (let n = 1; n <= PRS; n++) {
    const pr: TestPr = { owner: 'acme', repo: 'busy', number: n, installationId: 42, cloneUrl: 'https://github.invalid/acme/busy.git', headSha: 'a'.repeat(40), headRef: `f${n}`, baseRef: 'main', baseSha: 'b'.repeat(40), author: 'alice' };
    prs.push(pr);
    standin.setPullRequest('acme', 'busy', n, { number: n, state: 'open', head: { sha: pr.headSha, ref: pr.headRef }, base: { sha: pr.baseSha, ref: 'main' }, user: { login: 'alice' } });
    for (let i = 0; i < PER_PR; i++) deliveries.push(command(pr, deliveries.length < TRIPLED ? 3 : 1));
  }
  // One more command per PR, sent once all the others were answered: once the PR's workflow has handled
  // it, every earlier delivery was handled or dropped, so a missing or a surplus call is final.
  const markers = prs.map((pr) => command(pr, 1));
  const answered = [...deliveries, ...markers];

  // Every call the run may make, each as often as it may: the comment-started workflow reads its PR once;
  // per command, the sender's permission, one 👀 on the command and one reply carrying its delivery id.
  standin.expectExactly([
    ...prs.map((pr) => ({ route: 'GET /repos/:owner/:repo/pulls/:pull_number', path: `/repos/acme/busy/pulls/${pr.number}` })),
    { route: 'GET /repos/:owner/:repo/collaborators/:username/permission', path: '/repos/acme/busy/collaborators/carol/permission', times: answered.length },
    ...answered.flatMap((d) => [
      { route: 'POST /repos/:owner/:repo/issues/comments/:comment_id/reactions', path: `/repos/acme/busy/issues/comments/${d.commentId}/reactions`, body: (b: { content?: string }) => b.content === 'eyes' },
      {
        route: 'POST /repos/:owner/:repo/issues/:issue_number/comments',
        path: `/repos/acme/busy/issues/${d.pr}/comments`,
        body: (b: { body?: string }) => (b.body ?? '').includes(`<!-- terrapin:reply-${d.id}:0 -->`),
        label: `reply to ${d.id} on #${d.pr}`,
      },
    ]),
  ]);

  const url = `http://127.0.0.1:${web.port}${WEBHOOK_PATH}`;
  const send = (d: Delivery) => sendWebhook({ url, secret: h.config.github.webhookSecret, event: d.event, payload: d.payload, appId: h.config.github.appId, deliveryId: d.id });
  const sent = deliveries.flatMap((d) => Array.from({ length: d.times }, () => send(d)));
  const answers = await Promise.all(sent);
  expect(answers.filter((a) => a.status >= 300).map((a) => `${a.status} ${a.body}`)).toEqual([]);
  const markerAnswers = await Promise.all(markers.map(send));
  expect(markerAnswers.filter((a) => a.status >= 300).map((a) => `${a.status} ${a.body}`)).toEqual([]);
  const states = await Promise.all(markers.map((m) => h.waitHandled('acme', 'busy', m.pr, m.id, 180_000)));
  // Each PR's workflow handled its ten commands and the marker, each once: a redelivery never got in.
  states.forEach((state, i) => {
    const own = answered.filter((d) => d.pr === i + 1).map((d) => d.id);
    expect(state.handled.filter((id) => own.includes(id)).sort(), `#${i + 1}`).toEqual(own.sort());
    expect(new Set(state.handled).size, `#${i + 1}: a delivery handled twice`).toBe(state.handled.length);
  });
  standin.assertExactly();

  const bot = standin.comments('acme', 'busy').filter((c) => c.user.login === BOT);
  const replyMarkers = bot.map((c) => /<!-- terrapin:(\S+) -->/.exec(c.body)?.[1]);
  expect(new Set(replyMarkers).size).toBe(replyMarkers.length);
  expect(replyMarkers.sort()).toEqual(answered.map((d) => `reply-${d.id}:0`).sort());
  const commands = standin.comments('acme', 'busy').filter((c) => c.user.login === 'carol');
  expect(commands.map((c) => c.reactions.map((r) => r.content).join(',')).filter((r) => r !== 'eyes')).toEqual([]);
  // GitHub would answer a repeated reaction with the existing one: count the calls, not just the reactions.
  expect(standin.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/reactions')).length).toBe(answered.length);
  console.log(
    `webhooks: ${sent.length} deliveries (${deliveries.length} commands, ${TRIPLED} sent three times) over ${PRS} PRs, then ${markers.length} marker commands; ` +
      `${bot.length} replies, ${commands.length} 👀; every GitHub call as expected (${standin.calls.length} in all), lost 0, duplicated 0`,
  );
}, 300_000);
