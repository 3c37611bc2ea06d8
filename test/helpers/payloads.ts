// Real webhook payloads from @octokit/webhooks-examples, pointed at a test repository and PR.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples/api.github.com/index.json') as Array<{
  name: string;
  examples: Array<Record<string, any>>;
}>;

export interface TestPr {
  owner: string;
  repo: string;
  number: number;
  installationId: number;
  /** file:// URL of the fixture repo (base and head: no forks in these tests). */
  cloneUrl: string;
  headSha: string;
  headRef: string;
  baseRef: string;
  baseSha: string;
  author: string;
  draft?: boolean;
  labels?: string[];
  /** The head repository's clone URL when the PR comes from a fork. */
  headCloneUrl?: string;
}

/** A deep copy of the first example of that event and action. */
export function example(event: string, action: string): Record<string, any> {
  const found = examples.find((e) => e.name === event)?.examples.find((e) => e.action === action);
  if (!found) throw new Error(`no @octokit/webhooks-examples payload for ${event}.${action}`);
  return structuredClone(found);
}

function pointAt(payload: Record<string, any>, pr: TestPr, sender: string): Record<string, any> {
  payload.repository.name = pr.repo;
  payload.repository.full_name = `${pr.owner}/${pr.repo}`;
  payload.repository.owner.login = pr.owner;
  payload.repository.clone_url = pr.cloneUrl;
  payload.installation = { id: pr.installationId, node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==' };
  payload.sender = { ...payload.sender, login: sender, type: 'User' };
  return payload;
}

export function pullRequestEvent(
  action: 'opened' | 'reopened' | 'ready_for_review' | 'synchronize' | 'converted_to_draft' | 'closed',
  pr: TestPr,
  opts: { merged?: boolean; mergeCommitSha?: string; updatedAt?: string; sender?: string } = {},
): Record<string, any> {
  const payload = pointAt(example('pull_request', action), pr, opts.sender ?? pr.author);
  payload.number = pr.number;
  const p = payload.pull_request;
  p.number = pr.number;
  p.user.login = pr.author;
  p.draft = Boolean(pr.draft);
  p.labels = (pr.labels ?? []).map((name, i) => ({ id: i + 1, name, color: 'ededed', default: false }));
  p.state = action === 'closed' ? 'closed' : 'open';
  p.merged = Boolean(opts.merged);
  p.merge_commit_sha = opts.merged ? (opts.mergeCommitSha ?? pr.headSha) : null;
  if (opts.updatedAt) p.updated_at = opts.updatedAt;
  p.head.sha = pr.headSha;
  p.head.ref = pr.headRef;
  p.head.repo = { ...p.head.repo, clone_url: pr.headCloneUrl ?? pr.cloneUrl, full_name: pr.headCloneUrl ? `forker/${pr.repo}` : `${pr.owner}/${pr.repo}` };
  p.base.sha = pr.baseSha;
  p.base.ref = pr.baseRef;
  p.base.repo = { ...p.base.repo, clone_url: pr.cloneUrl, full_name: `${pr.owner}/${pr.repo}` };
  return payload;
}

/** `createdAt` defaults to now: a command written before the plan it acts on is refused (as GitHub dates it). */
export function issueCommentEvent(pr: TestPr, body: string, opts: { login: string; commentId: number; createdAt?: string }): Record<string, any> {
  const payload = pointAt(example('issue_comment', 'created'), pr, opts.login);
  payload.issue.number = pr.number;
  payload.issue.pull_request = { url: `https://api.github.com/repos/${pr.owner}/${pr.repo}/pulls/${pr.number}` };
  payload.issue.user.login = pr.author;
  payload.comment.id = opts.commentId;
  payload.comment.body = body;
  payload.comment.user = { ...payload.comment.user, login: opts.login, type: 'User' };
  payload.comment.created_at = opts.createdAt ?? new Date().toISOString();
  return payload;
}

let nextReviewId = 80_000;

export function reviewSubmittedEvent(pr: TestPr, opts: { login: string; state: 'approved' | 'commented' | 'changes_requested'; commitId: string; reviewId?: number; submittedAt?: string }): Record<string, any> {
  const payload = pointAt(example('pull_request_review', 'submitted'), pr, opts.login);
  payload.review.submitted_at = opts.submittedAt ?? new Date().toISOString();
  // Each review its own id, as on GitHub: a review counts once.
  payload.review.id = opts.reviewId ?? nextReviewId++;
  payload.review.state = opts.state;
  payload.review.commit_id = opts.commitId;
  payload.review.user = { ...payload.review.user, login: opts.login };
  payload.pull_request.number = pr.number;
  payload.pull_request.user.login = pr.author;
  payload.pull_request.head.sha = pr.headSha;
  return payload;
}

export function checkRunActionEvent(pr: TestPr, identifier: string, opts: { login: string; externalId: string; headSha?: string; checkName?: string }): Record<string, any> {
  const payload = pointAt(example('check_run', 'requested_action'), pr, opts.login);
  payload.requested_action = { identifier };
  payload.check_run.external_id = opts.externalId;
  payload.check_run.head_sha = opts.headSha ?? pr.headSha;
  if (opts.checkName) payload.check_run.name = opts.checkName;
  return payload;
}

/** A comment on a plain issue (not a PR), e.g. a drift issue: title and labels as Terrapin made them. */
export function issueOnlyCommentEvent(
  pr: Pick<TestPr, 'owner' | 'repo' | 'installationId' | 'cloneUrl' | 'author'>,
  issue: { number: number; title: string; labels: string[] },
  body: string,
  opts: { login: string; commentId: number },
): Record<string, any> {
  const payload = pointAt(example('issue_comment', 'created'), pr as TestPr, opts.login);
  delete payload.issue.pull_request;
  payload.issue.number = issue.number;
  payload.issue.title = issue.title;
  payload.issue.labels = issue.labels.map((name, i) => ({ id: i + 1, name, color: 'ededed', default: false }));
  payload.comment.id = opts.commentId;
  payload.comment.body = body;
  payload.comment.user = { ...payload.comment.user, login: opts.login, type: 'User' };
  payload.comment.created_at = new Date().toISOString();
  return payload;
}

/** A push to a branch of the test repository (the default branch is main). */
export function pushEvent(repo: Pick<TestPr, 'owner' | 'repo' | 'installationId' | 'cloneUrl'>, opts: { before: string; after: string; login: string; branch?: string }): Record<string, any> {
  const payload = pointAt(example('push', undefined as unknown as string), { ...repo, number: 0, headSha: opts.after, headRef: 'main', baseRef: 'main', baseSha: opts.before, author: opts.login }, opts.login);
  payload.ref = `refs/heads/${opts.branch ?? 'main'}`;
  payload.repository.default_branch = 'main';
  payload.before = opts.before;
  payload.after = opts.after;
  payload.deleted = false;
  payload.created = false;
  return payload;
}
