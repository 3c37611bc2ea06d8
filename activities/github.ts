// GitHub side effects of the PR workflow: check runs, comments, reactions, permissions, minimizing.
// Posting activities are safe to retry: a retried attempt first looks for what an earlier attempt
// already posted (a hidden marker in comments, external_id + name for check runs).
import { activityInfo } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { snapshotFrom } from '../app/events/pull-request.ts';
import type { RenderRequest } from '../shared/activity-contracts.ts';
import type { GithubClients } from './github-client.ts';
import { render, splitComment, truncateForCheckRun } from './render.ts';
import { renderApplyComment, renderPlanComment } from './multi-project-comment.ts';
import type { CheckAction, PrSnapshot, RepoRef } from '../shared/contracts.ts';

export type Permission = 'admin' | 'write' | 'read' | 'none';

export interface CheckRunRequest {
  repo: RepoRef;
  headSha: string;
  name: string;
  /** Update this check run instead of creating one. */
  checkRunId?: number;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure' | 'neutral' | 'cancelled' | 'skipped';
  /** Rendered template: its first line is the title, the rest the summary. */
  output: RenderRequest;
  actions?: CheckAction[];
}

export interface RequirementFactsRequest {
  repo: RepoRef;
  number: number;
  headSha: string;
  baseRef: string;
  /** Fetch PR.mergeable. */
  mergeable: boolean;
  /** Fetch the base head and the merge-base. */
  divergence: boolean;
  /** Approvers whose membership of `teams` (org/slug) is needed. */
  approvers: string[];
  teams: string[];
}

export interface RequirementFacts {
  mergeable: boolean | null;
  baseSha: string;
  mergeBaseSha: string;
  teamsOf: Record<string, string[]>;
}

export interface PostedComment {
  ids: number[];
  nodeIds: string[];
}

/** GitHub limits: at most 3 actions, label ≤ 20, description ≤ 40, identifier ≤ 20 characters. */
const ACTION_BUTTONS: Record<CheckAction, { label: string; description: string }> = {
  approve: { label: 'Approve', description: 'Approve this plan and apply it' },
  apply: { label: 'Apply', description: 'Apply the approved plan' },
  replan: { label: 'Re-plan', description: 'Run terraform plan again' },
};

/**
 * 401/404/422 and permission 403s will not get better by retrying; rate limits and 5xx will. A rate limit
 * is retried no sooner than GitHub asks (retry-after, or the primary limit's reset time); 5xx follow the
 * activity's backoff.
 */
export function rethrowClassified(err: unknown, what: string, now = Date.now()): never {
  const status = (err as { status?: number }).status;
  const headers = (err as { response?: { headers?: Record<string, string> } }).response?.headers ?? {};
  const rateLimited = status === 429 || (status === 403 && (headers['retry-after'] || headers['x-ratelimit-remaining'] === '0'));
  if (rateLimited) {
    const retryAfter = Number(headers['retry-after']);
    const reset = Number(headers['x-ratelimit-reset']) * 1000 - now;
    const waitMs = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : Number.isFinite(reset) && reset > 0 ? reset : undefined;
    throw ApplicationFailure.create({
      message: `${what}: GitHub rate limit (${status})${waitMs !== undefined ? `, retrying in ${Math.ceil(waitMs / 1000)} s` : ''}`,
      type: 'GitHubRateLimited',
      ...(waitMs !== undefined ? { nextRetryDelay: Math.max(waitMs, 1000) } : {}),
    });
  }
  if (status && status >= 400 && status < 500) {
    throw ApplicationFailure.nonRetryable(`${what}: GitHub answered ${status}`, `GitHub${status}`);
  }
  throw err;
}

/** A failure GitHub may not repeat: 5xx, rate limits, or no answer at all (a network error such as ECONNRESET). */
export function isTransient(err: unknown): boolean {
  const { status, code } = err as { status?: number; code?: unknown };
  const headers = (err as { response?: { headers?: Record<string, string> } }).response?.headers ?? {};
  if (!status) return typeof code === 'string' && code.startsWith('E');
  return status >= 500 || status === 429 || (status === 403 && Boolean(headers['retry-after'] || headers['x-ratelimit-remaining'] === '0'));
}

/**
 * Retries a call within one activity attempt: for calls that gate long work (the installation token a clone
 * needs) under an activity policy with few attempts. Waits as long as retry-after asks (capped), else
 * 1, 2, 4… s; `onWait` lets the activity heartbeat meanwhile. The last failure is classified as usual.
 */
export async function retryTransient<T>(
  what: string,
  call: () => Promise<T>,
  { attempts = 5, maxWaitMs = 20_000, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)), onWait }: { attempts?: number; maxWaitMs?: number; sleep?: (ms: number) => Promise<void>; onWait?: () => void } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= attempts || !isTransient(err)) rethrowClassified(err, what);
      const retryAfter = Number((err as { response?: { headers?: Record<string, string> } }).response?.headers?.['retry-after']);
      const waitMs = Math.min(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 1000 * 2 ** (attempt - 1), maxWaitMs);
      onWait?.();
      await sleep(waitMs);
    }
  }
}

const marker = (key: string, part: number) => `<!-- terrapin:${key}:${part} -->`;
const GITHUB_COMMENT_LIMIT = 65_536;
/** Room kept in every part for the hidden marker appended to it. */
const MARKER_ROOM = 200;

export interface GithubActivityDeps {
  github: GithubClients;
  temporalUiUrl?: string;
  namespace: string;
}

export function createGithubActivities(deps: GithubActivityDeps) {
  return { ...pullRequestReads(deps), ...pullRequestWrites(deps) };
}

/** What Terrapin reads of a pull request and its repository: the facts its decisions need. */
function pullRequestReads({ github }: GithubActivityDeps) {
  const client = (repo: RepoRef) => github.forInstallation(repo.installationId);
  return {
    async getPullRequest({ repo, number }: { repo: RepoRef; number: number }): Promise<PrSnapshot> {
      try {
        const { data } = await client(repo).pulls.get({ owner: repo.owner, repo: repo.name, pull_number: number });
        return snapshotFrom({ ...data, state: data.state === 'open' ? 'open' : 'closed' }, repo.cloneUrl);
      } catch (err) {
        rethrowClassified(err, `reading pull request #${number}`);
      }
    },

    /** The merged PR whose merge commit this is, if any: its own workflow deploys it, with its approvals. */
    async mergedPrOf({ repo, sha }: { repo: RepoRef; sha: string }): Promise<number | undefined> {
      try {
        const { data } = await client(repo).repos.listPullRequestsAssociatedWithCommit({ owner: repo.owner, repo: repo.name, commit_sha: sha, per_page: 100 });
        return data.find((p) => p.merged_at && p.merge_commit_sha === sha)?.number;
      } catch (err) {
        rethrowClassified(err, `reading the pull requests of ${sha}`);
      }
    },

    /** The open pull requests into `base`, every page: those a push to it may leave with an outdated plan. */
    async openPullRequests({ repo, base }: { repo: RepoRef; base: string }): Promise<number[]> {
      try {
        const octokit = client(repo);
        const pulls = await octokit.paginate(octokit.pulls.list, { owner: repo.owner, repo: repo.name, state: 'open', base, per_page: 100 });
        return pulls.map((p) => p.number).sort((a, b) => a - b);
      } catch (err) {
        rethrowClassified(err, `listing the open pull requests into ${base}`);
      }
    },

    /**
     * The GitHub logins that wrote or committed the PR's commits (GitHub lists up to 250): part of the PR's
     * author set, none of whom may approve it. `web-flow` (GitHub's own committer for web edits and merges)
     * and commits without a linked account are not people and are left out.
     */
    async pullRequestCommitLogins({ repo, number }: { repo: RepoRef; number: number }): Promise<string[]> {
      try {
        const octokit = client(repo);
        const commits = await octokit.paginate(octokit.pulls.listCommits, { owner: repo.owner, repo: repo.name, pull_number: number, per_page: 100 });
        return commitLogins(commits);
      } catch (err) {
        rethrowClassified(err, `reading the commits of #${number}`);
      }
    },

    async getPermission({ repo, login }: { repo: RepoRef; login: string }): Promise<Permission> {
      try {
        const { data } = await client(repo).repos.getCollaboratorPermissionLevel({
          owner: repo.owner,
          repo: repo.name,
          username: login,
        });
        return (['admin', 'write', 'read'] as const).find((p) => p === data.permission) ?? 'none';
      } catch (err) {
        if ((err as { status?: number }).status === 404) return 'none';
        rethrowClassified(err, `reading the permission of ${login}`);
      }
    },

    /**
     * What apply requirements need from GitHub, and only that: PR.mergeable, where the PR forked from
     * the base branch and where the base is now, and which of the given teams each approver is in.
     */
    async requirementFacts(req: RequirementFactsRequest): Promise<RequirementFacts> {
      const octokit = client(req.repo);
      const { owner, name } = req.repo;
      const facts: RequirementFacts = { mergeable: null, baseSha: '', mergeBaseSha: '', teamsOf: {} };
      try {
        if (req.mergeable) {
          facts.mergeable = (await octokit.pulls.get({ owner, repo: name, pull_number: req.number })).data.mergeable;
        }
        if (req.divergence) {
          const { data } = await octokit.repos.compareCommitsWithBasehead({ owner, repo: name, basehead: `${req.baseRef}...${req.headSha}`, per_page: 1 });
          facts.baseSha = data.base_commit.sha;
          facts.mergeBaseSha = data.merge_base_commit.sha;
        }
        for (const login of req.approvers) {
          facts.teamsOf[login] = [];
          for (const team of req.teams) {
            const [org, slug] = team.split('/');
            try {
              const { data } = await octokit.teams.getMembershipForUserInOrg({ org: org!, team_slug: slug!, username: login });
              if (data.state === 'active') facts.teamsOf[login]!.push(team);
            } catch (err) {
              if ((err as { status?: number }).status !== 404) throw err;
            }
          }
        }
        return facts;
      } catch (err) {
        rethrowClassified(err, 'reading facts for apply requirements');
      }
    },
  };
}

/** What Terrapin writes on a pull request: reactions, comments, minimized comments and check runs. */
function pullRequestWrites({ github, temporalUiUrl, namespace }: GithubActivityDeps) {
  const client = (repo: RepoRef) => github.forInstallation(repo.installationId);

  return {
    async reactToComment({ repo, commentId }: { repo: RepoRef; commentId: number }): Promise<void> {
      try {
        // Reactions are idempotent on GitHub: a repeat returns the existing one.
        await client(repo).reactions.createForIssueComment({
          owner: repo.owner,
          repo: repo.name,
          comment_id: commentId,
          content: 'eyes',
        });
      } catch (err) {
        rethrowClassified(err, 'reacting to a comment');
      }
    },

    /** Renders a template and posts it as one or more comments (split at GitHub's size limit). */
    async postComment({ repo, number, message, key }: { repo: RepoRef; number: number; message: RenderRequest; key: string }): Promise<PostedComment> {
      return postText(github, repo, number, key, await render(message));
    },

    /** The plan comment of a push that touches several projects (table + a section per project). */
    async postPlanReport({ repo, number, key, report }: { repo: RepoRef; number: number; key: string; report: Parameters<typeof renderPlanComment>[0] }): Promise<PostedComment> {
      return postText(github, repo, number, key, await renderPlanComment(report));
    },

    async postApplyReport({ repo, number, key, report }: { repo: RepoRef; number: number; key: string; report: Parameters<typeof renderApplyComment>[0] }): Promise<PostedComment> {
      return postText(github, repo, number, key, await renderApplyComment(report));
    },

    async minimizeComments({ repo, nodeIds }: { repo: RepoRef; nodeIds: string[] }): Promise<void> {
      const octokit = client(repo);
      for (const id of nodeIds) {
        try {
          await octokit.graphql(
            `mutation($id: ID!) { minimizeComment(input: { subjectId: $id, classifier: OUTDATED }) { minimizedComment { isMinimized } } }`,
            { id },
          );
        } catch (err) {
          rethrowClassified(err, 'minimizing an outdated comment');
        }
      }
    },

    /** Creates or updates a check run; returns its id. */
    async upsertCheckRun(req: CheckRunRequest): Promise<number> {
      const { repo } = req;
      const octokit = client(repo);
      const [title = '', ...rest] = (await render(req.output)).split('\n');
      const externalId = activityInfo().workflowExecution!.workflowId;
      const body = {
        owner: repo.owner,
        repo: repo.name,
        name: req.name,
        status: req.status,
        ...(req.conclusion ? { conclusion: req.conclusion, completed_at: new Date().toISOString() } : {}),
        external_id: externalId,
        details_url: detailsUrl(temporalUiUrl, namespace),
        output: { title: title.slice(0, 255), summary: truncateForCheckRun(rest.join('\n').trim() || title) },
        actions: (req.actions ?? []).map((a) => ({ identifier: a, ...ACTION_BUTTONS[a] })),
      };
      try {
        let checkRunId = req.checkRunId;
        if (!checkRunId && activityInfo().attempt > 1) {
          const { data } = await octokit.checks.listForRef({
            owner: repo.owner,
            repo: repo.name,
            ref: req.headSha,
            check_name: req.name,
            filter: 'latest',
          });
          checkRunId = data.check_runs.find((c) => c.external_id === externalId)?.id;
        }
        if (checkRunId) {
          await octokit.checks.update({ ...body, check_run_id: checkRunId });
          return checkRunId;
        }
        const { data } = await octokit.checks.create({ ...body, head_sha: req.headSha });
        return data.id;
      } catch (err) {
        rethrowClassified(err, `reporting check ${req.name}`);
      }
    },
  };
}

export type GithubActivities = ReturnType<typeof createGithubActivities>;

/** Distinct author and committer logins of commits, without GitHub's `web-flow` and unlinked accounts. */
export function commitLogins(commits: ReadonlyArray<{ author?: { login?: string } | null; committer?: { login?: string } | null }>): string[] {
  const logins = new Map<string, string>();
  for (const c of commits) {
    for (const login of [c.author?.login, c.committer?.login]) {
      if (login && login.toLowerCase() !== 'web-flow') logins.set(login.toLowerCase(), login);
    }
  }
  return [...logins.values()];
}

/** Posts text as one or more comments; a retried attempt reuses the parts an earlier one posted. */
async function postText(github: GithubClients, repo: RepoRef, number: number, key: string, text: string): Promise<PostedComment> {
  const parts = splitComment(text, GITHUB_COMMENT_LIMIT - MARKER_ROOM);
  const octokit = github.forInstallation(repo.installationId);
  const posted: PostedComment = { ids: [], nodeIds: [] };
  const existing = new Map<string, { id: number; node_id: string }>();
  try {
    if (activityInfo().attempt > 1) {
      const comments = await octokit.paginate(octokit.issues.listComments, {
        owner: repo.owner,
        repo: repo.name,
        issue_number: number,
        per_page: 100,
      });
      for (const c of comments) {
        // Only the app's own comments: a person could paste a marker to make Terrapin skip a post.
        if (c.user?.type !== 'Bot') continue;
        const m = /<!-- terrapin:(\S+:\d+) -->/.exec(c.body ?? '');
        if (m) existing.set(m[1]!, c);
      }
    }
    for (const [i, part] of parts.entries()) {
      const found = existing.get(`${key}:${i}`);
      const c =
        found ??
        (await octokit.issues.createComment({
          owner: repo.owner,
          repo: repo.name,
          issue_number: number,
          body: `${part}\n${marker(key, i)}`,
        })).data;
      posted.ids.push(c.id);
      posted.nodeIds.push(c.node_id);
    }
    return posted;
  } catch (err) {
    rethrowClassified(err, `commenting on #${number}`);
  }
}

/** The check run's Details link: this workflow run in the Temporal UI, when its address is known. */
function detailsUrl(temporalUiUrl: string | undefined, namespace: string): string | undefined {
  if (!temporalUiUrl) return undefined;
  const { workflowId, runId } = activityInfo().workflowExecution!;
  return `${temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}
