// GitHub API faults: the loopback stand-in answers 30% of calls with a 502 (half of them after making the
// change), a 403 secondary rate limit or a 429, both with retry-after. Six PRs plan, are approved and
// apply at once. Every comment and check run must land exactly once, every apply must run once, and no
// retry may come sooner than retry-after said. The stand-in holds each PR to the calls it may make: what
// creates something exactly once; reads, 👀 and updates at least once (a 502 after the change is retried).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startGithubStandin, type CallExpectation, type GithubStandin } from '../../scripts/github-standin.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { ROUTE } from '../helpers/standin-routes.ts';

const RATE = 0.3;
const PRS = 6;
const RETRY_AFTER_S = 1;

let h: Harness;
let standin: GithubStandin;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  standin = await startGithubStandin({ botLogin: 'terrapin[bot]' });
  await h.startWorker({ github: { baseUrl: standin.baseUrl } });
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-faults-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  await standin?.close();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A resource whose creation appends a line to a counter file: one line per apply that really ran. */
const infra = (name: string, size: string) => `terraform {
  backend "local" {
    path = "${join(tmp, `${name}.tfstate`)}"
  }
}
resource "terraform_data" "server" {
  input = "${size}"
  provisioner "local-exec" {
    command = "echo applied >> ${join(tmp, `${name}.count`)}"
  }
}
`;

async function openPr(i: number): Promise<TestPr> {
  const name = `svc${i}`;
  const repo = await createFixtureRepo({ 'main.tf': '# nothing deployed yet\n' });
  repos.push(repo);
  const baseSha = await repo.head();
  const headSha = await repo.commit({ 'main.tf': infra(name, 'small') }, { branch: 'add-server' });
  const pr: TestPr = { owner: 'acme', repo: name, number: i, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'add-server', baseRef: 'main', baseSha, author: 'alice' };
  standin.setPullRequest('acme', name, i, { number: i, state: 'open', head: { sha: headSha }, user: { login: 'alice' } });
  return pr;
}


/**
 * The calls one PR may make. A call answered with a fault that changed nothing does not count (the client
 * retries it); a 502 that came after the change does, so whatever is created must be created exactly once,
 * while a retried read, 👀 or update may repeat.
 */
function expectedCalls(pr: TestPr, approval: number, marker: { comment: number; delivery: string }): CallExpectation[] {
  const repo = `/repos/acme/${pr.repo}`;
  const has = (text: string) => (b: { body?: string }) => (b.body ?? '').includes(text);
  return [
    { route: ROUTE.createCheck, path: `${repo}/check-runs`, body: (b) => b.name === 'terrapin/plan' && b.head_sha === pr.headSha, label: `${pr.repo}: plan check created` },
    { route: ROUTE.createCheck, path: `${repo}/check-runs`, body: (b) => b.name === 'terrapin/apply' && b.head_sha === pr.headSha, label: `${pr.repo}: apply check created` },
    { route: ROUTE.updateCheck, path: new RegExp(`^${repo}/check-runs/\\d+$`), times: { min: 3 }, label: `${pr.repo}: check runs updated` },
    { route: ROUTE.listChecks, path: new RegExp(`^${repo}/commits/${pr.headSha}/check-runs$`), times: { min: 0 }, label: `${pr.repo}: check runs looked up` },
    { route: ROUTE.comment, path: `${repo}/issues/${pr.number}/comments`, body: has('<!-- terrapin:plan-1:0 -->'), label: `${pr.repo}: plan comment` },
    { route: ROUTE.comment, path: `${repo}/issues/${pr.number}/comments`, body: has('<!-- terrapin:apply-1:0 -->'), label: `${pr.repo}: apply comment` },
    { route: ROUTE.comment, path: `${repo}/issues/${pr.number}/comments`, body: has(`<!-- terrapin:reply-${marker.delivery}:0 -->`), label: `${pr.repo}: reply to the closing command` },
    { route: ROUTE.listComments, path: `${repo}/issues/${pr.number}/comments`, times: { min: 0 }, label: `${pr.repo}: comments looked up` },
    { route: ROUTE.editComment, path: new RegExp(`^${repo}/issues/comments/\\d+$`), times: { min: 0 }, label: `${pr.repo}: comment brought up to date` },
    { route: ROUTE.reaction, path: `${repo}/issues/comments/${approval}/reactions`, times: { min: 1 }, label: `${pr.repo}: 👀 on /approve` },
    { route: ROUTE.reaction, path: `${repo}/issues/comments/${marker.comment}/reactions`, label: `${pr.repo}: 👀 on the closing command` },
    { route: ROUTE.permission, path: `${repo}/collaborators/bob/permission`, times: { min: 2 }, label: `${pr.repo}: bob's permission, per command` },
    { route: ROUTE.commits, path: `${repo}/pulls/${pr.number}/commits`, times: { min: 1 }, label: `${pr.repo}: the PR's commits, for the approval` },
  ];
}

test('30% of GitHub calls fail: every comment and check run lands exactly once, every apply runs once', async () => {
  standin.setPermission('bob', 'write');
  standin.expectExactly([]);
  standin.setFaults({ rate: RATE, seed: 20261121, retryAfter: RETRY_AFTER_S });
  const prs = await Promise.all(Array.from({ length: PRS }, (_, i) => openPr(i + 1)));
  await Promise.all(prs.map((pr) => h.receive('pull_request', pullRequestEvent('opened', pr))));
  await Promise.all(prs.map((pr) => h.waitFor('acme', pr.repo, pr.number, (s) => s.plan?.status === 'ready', 120_000)));
  const approvals = new Map<number, number>();
  for (const pr of prs) {
    const approval = standin.addIssueComment('acme', pr.repo, pr.number, { body: '/approve', login: 'bob' });
    approvals.set(pr.number, approval.id);
    await h.receive('issue_comment', issueCommentEvent(pr, '/approve', { login: 'bob', commentId: approval.id }));
  }
  await Promise.all(prs.map((pr) => h.waitFor('acme', pr.repo, pr.number, (s) => s.plan?.status === 'applied', 120_000)));
  // The apply's own reports land after the status flips: wait for the last one.
  await Promise.all(prs.map((pr) => waitUntil(() => standin.checkRuns('acme', pr.repo).some((c) => c.name === 'terrapin/apply' && c.conclusion === 'success'))));
  standin.setFaults(undefined);
  // A closing command per PR, once handled by its idle workflow, proves nothing more is on its way.
  for (const pr of prs) {
    const delivery = `marker-${pr.repo}`;
    const marker = standin.addIssueComment('acme', pr.repo, pr.number, { body: '/help', login: 'bob' });
    await h.receive('issue_comment', issueCommentEvent(pr, '/help', { login: 'bob', commentId: marker.id }), delivery);
    await h.waitHandled('acme', pr.repo, pr.number, delivery, 120_000);
    standin.expectExactly(expectedCalls(pr, approvals.get(pr.number)!, { comment: marker.id, delivery }));
  }
  standin.assertExactly();

  const faults = standin.calls.filter((c) => c.fault);
  for (const pr of prs) {
    const bodies = standin.comments('acme', pr.repo, pr.number).filter((c) => c.user.login === 'terrapin[bot]').map((c) => c.body);
    const markers = bodies.map((b) => /<!-- terrapin:(\S+) -->/.exec(b)?.[1]);
    expect(markers.sort()).toEqual(['apply-1:0', 'plan-1:0', `reply-marker-${pr.repo}:0`]);
    const runs = standin.checkRuns('acme', pr.repo).map((c) => `${c.name}@${c.head_sha.slice(0, 7)}:${c.conclusion}`);
    expect(runs.sort()).toEqual([`terrapin/apply@${pr.headSha.slice(0, 7)}:success`, `terrapin/plan@${pr.headSha.slice(0, 7)}:success`]);
    // The 👀 on the approval, once.
    expect(standin.comments('acme', pr.repo, pr.number).filter((c) => c.user.login === 'bob').map((c) => c.reactions.map((r) => r.content))).toEqual([['eyes'], ['eyes']]);
    expect((await readFile(join(tmp, `${pr.repo}.count`), 'utf8')).trim().split('\n')).toEqual(['applied']);
  }

  // A rate-limited call's retry is the next call with its method and path (a 👀 goes out beside a command's
  // other calls, so the next call of the repository may be another one): it waits as retry-after says.
  const early = [];
  for (const [i, call] of standin.calls.entries()) {
    if (call.fault !== '403-rate-limit' && call.fault !== '429') continue;
    const retry = standin.calls.slice(i + 1).find((c) => c.method === call.method && c.path === call.path);
    if (retry && retry.at.getTime() - call.at.getTime() < RETRY_AFTER_S * 1000 - 50) early.push(`${call.method} ${call.path} → ${retry.method} ${retry.path}`);
  }
  expect(early).toEqual([]);
  const byKind = new Map<string, number>();
  for (const c of faults) byKind.set(c.fault!, (byKind.get(c.fault!) ?? 0) + 1);
  console.log(
    `github faults: ${standin.calls.length} calls, ${faults.length} faults injected (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
      `${PRS} PRs planned and applied; every call one the PR may make; duplicate comments 0, duplicate check runs 0, double applies 0`,
  );
  expect(faults.length).toBeGreaterThan(5);
}, 300_000);

async function waitUntil(ok: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}
