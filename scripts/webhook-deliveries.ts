// Signed webhook deliveries shaped like GitHub's, for the demo and the webhook benchmark. Payloads start
// from @octokit/webhooks-examples (real recorded deliveries) with the repository, people, numbers and
// commits replaced, so handlers see every field GitHub sends, not just the ones we thought of.
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

type Json = Record<string, any>;

interface ExampleEvent {
  name: string;
  examples: Json[];
}

const examples = createRequire(import.meta.url)('@octokit/webhooks-examples') as ExampleEvent[];

function example(event: string, action: string): Json {
  const found = examples.find((e) => e.name === event)?.examples.find((x) => x.action === action && x.installation);
  const fallback = examples.find((e) => e.name === event)?.examples.find((x) => x.action === action);
  const chosen = found ?? fallback;
  if (!chosen) throw new Error(`@octokit/webhooks-examples has no ${event}.${action} example`);
  return structuredClone(chosen);
}

export interface DemoRepository {
  owner: string;
  name: string;
  /** Where the bot clones from: a file:// URL in the demo. */
  cloneUrl: string;
  installationId: number;
  /** Web origin used in html_url fields, e.g. http://127.0.0.1:PORT. */
  htmlOrigin: string;
  /** REST base URL used in url fields, e.g. http://127.0.0.1:PORT/api/v3. */
  apiBaseUrl: string;
}

const idOf = (text: string) => {
  let h = 7;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % 90_000_000 + 10_000_000;
};

export function userJson(login: string, repo: DemoRepository): Json {
  const id = idOf(login);
  const bot = login.endsWith('[bot]');
  return {
    login,
    id,
    node_id: `U_${Buffer.from(login).toString('base64url')}`,
    avatar_url: `${repo.htmlOrigin}/avatars/${login}`,
    gravatar_id: '',
    url: `${repo.apiBaseUrl}/users/${login}`,
    html_url: `${repo.htmlOrigin}/${login}`,
    type: bot ? 'Bot' : 'User',
    site_admin: false,
  };
}

export function repositoryJson(repo: DemoRepository): Json {
  const base = example('pull_request', 'opened').repository as Json;
  const fullName = `${repo.owner}/${repo.name}`;
  const rewritten = JSON.parse(
    JSON.stringify(base)
      .replaceAll('https://api.github.com', repo.apiBaseUrl)
      .replaceAll('https://github.com', repo.htmlOrigin)
      .replaceAll('Codertocat/Hello-World', fullName),
  ) as Json;
  return {
    ...rewritten,
    id: idOf(fullName),
    node_id: `R_${Buffer.from(fullName).toString('base64url')}`,
    name: repo.name,
    full_name: fullName,
    private: true,
    owner: { ...userJson(repo.owner, repo), type: 'Organization' },
    clone_url: repo.cloneUrl,
    default_branch: 'main',
  };
}

export interface PullRequestSpec {
  repo: DemoRepository;
  number: number;
  title: string;
  body?: string;
  author: string;
  head: { ref: string; sha: string };
  base: { ref: string; sha: string };
  state?: 'open' | 'closed';
  merged?: boolean;
  mergeCommitSha?: string;
  mergedBy?: string;
}

/** The `pull_request` object as GitHub's REST API and webhooks show it. */
export function pullRequestJson(spec: PullRequestSpec): Json {
  const { repo, number } = spec;
  const base = example('pull_request', 'opened').pull_request as Json;
  const repository = repositoryJson(repo);
  const prUrl = `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/pulls/${number}`;
  const htmlUrl = `${repo.htmlOrigin}/${repo.owner}/${repo.name}/pull/${number}`;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const merged = spec.merged ?? false;
  const side = (s: { ref: string; sha: string }) => ({
    label: `${repo.owner}:${s.ref}`,
    ref: s.ref,
    sha: s.sha,
    user: repository.owner,
    repo: repository,
  });
  return {
    ...base,
    url: prUrl,
    id: idOf(`${repo.owner}/${repo.name}#${number}`),
    node_id: `PR_${Buffer.from(`${repo.owner}/${repo.name}#${number}`).toString('base64url')}`,
    html_url: htmlUrl,
    diff_url: `${htmlUrl}.diff`,
    patch_url: `${htmlUrl}.patch`,
    issue_url: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/issues/${number}`,
    commits_url: `${prUrl}/commits`,
    review_comments_url: `${prUrl}/comments`,
    comments_url: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/issues/${number}/comments`,
    statuses_url: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/statuses/${spec.head.sha}`,
    number,
    state: spec.state ?? 'open',
    locked: false,
    title: spec.title,
    body: spec.body ?? null,
    user: userJson(spec.author, repo),
    created_at: now,
    updated_at: now,
    closed_at: spec.state === 'closed' ? now : null,
    merged_at: merged ? now : null,
    merge_commit_sha: spec.mergeCommitSha ?? null,
    draft: false,
    merged,
    mergeable: merged ? null : true,
    merged_by: merged && spec.mergedBy ? userJson(spec.mergedBy, repo) : null,
    head: side(spec.head),
    base: side(spec.base),
    author_association: 'MEMBER',
    _links: {
      self: { href: prUrl },
      html: { href: htmlUrl },
      issue: { href: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/issues/${number}` },
      comments: { href: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/issues/${number}/comments` },
      review_comments: { href: `${prUrl}/comments` },
      review_comment: { href: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/pulls/comments{/number}` },
      commits: { href: `${prUrl}/commits` },
      statuses: { href: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/statuses/${spec.head.sha}` },
    },
  };
}

const installationJson = (repo: DemoRepository) => ({
  id: repo.installationId,
  node_id: `MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u${repo.installationId}`,
});

export function pullRequestEvent(action: 'opened' | 'synchronize' | 'closed' | 'reopened', spec: PullRequestSpec, sender: string): Json {
  const base = example('pull_request', action);
  return {
    ...base,
    action,
    number: spec.number,
    pull_request: pullRequestJson(spec),
    repository: repositoryJson(spec.repo),
    sender: userJson(sender, spec.repo),
    installation: installationJson(spec.repo),
  };
}

export interface CommentSpec {
  id: number;
  nodeId: string;
  body: string;
  author: string;
}

/** issue_comment.created on a pull request (GitHub sends PR conversation comments as issue comments). */
export function issueCommentEvent(pr: PullRequestSpec, comment: CommentSpec): Json {
  const base = example('issue_comment', 'created');
  const { repo, number } = pr;
  const issueApi = `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/issues/${number}`;
  const htmlUrl = `${repo.htmlOrigin}/${repo.owner}/${repo.name}/pull/${number}`;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    ...base,
    action: 'created',
    issue: {
      ...base.issue,
      url: issueApi,
      repository_url: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}`,
      labels_url: `${issueApi}/labels{/name}`,
      comments_url: `${issueApi}/comments`,
      events_url: `${issueApi}/events`,
      html_url: htmlUrl,
      id: idOf(`issue:${repo.owner}/${repo.name}#${number}`),
      number,
      title: pr.title,
      user: userJson(pr.author, repo),
      state: pr.state ?? 'open',
      body: pr.body ?? null,
      pull_request: { url: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/pulls/${number}`, html_url: htmlUrl, diff_url: `${htmlUrl}.diff`, patch_url: `${htmlUrl}.patch`, merged_at: null },
    },
    comment: {
      ...base.comment,
      url: `${repo.apiBaseUrl}/repos/${repo.owner}/${repo.name}/issues/comments/${comment.id}`,
      html_url: `${htmlUrl}#issuecomment-${comment.id}`,
      issue_url: issueApi,
      id: comment.id,
      node_id: comment.nodeId,
      user: userJson(comment.author, repo),
      created_at: now,
      updated_at: now,
      author_association: 'MEMBER',
      body: comment.body,
    },
    repository: repositoryJson(repo),
    sender: userJson(comment.author, repo),
    installation: installationJson(repo),
  };
}

export interface Delivery {
  id: string;
  status: number;
  /** Webhook → response headers, in milliseconds. */
  latencyMs: number;
  body: string;
}

/** POSTs one delivery the way GitHub does: X-GitHub-Event/Delivery headers and an HMAC-SHA256 signature. */
export async function sendWebhook(opts: { url: string; secret: string; event: string; payload: unknown; appId: string; deliveryId?: string }): Promise<Delivery> {
  const id = opts.deliveryId ?? randomUUID();
  const body = JSON.stringify(opts.payload);
  const started = performance.now();
  const res = await fetch(opts.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/terrapin-demo',
      'x-github-event': opts.event,
      'x-github-delivery': id,
      'x-github-hook-id': '1',
      'x-github-hook-installation-target-type': 'integration',
      'x-github-hook-installation-target-id': opts.appId,
      'x-hub-signature': `sha1=${createHmac('sha1', opts.secret).update(body).digest('hex')}`,
      'x-hub-signature-256': `sha256=${createHmac('sha256', opts.secret).update(body).digest('hex')}`,
    },
    body,
  });
  const latencyMs = performance.now() - started;
  return { id, status: res.status, latencyMs, body: await res.text() };
}
