// pull_request → pr-updated (with a fresh PR snapshot) or pr-closed.
import type { Context } from 'probot';
import type { HandlerDeps } from './deps.ts';
import type { PrSnapshot } from '../../shared/contracts.ts';
import { repoRefFrom } from './repo-ref.ts';

export const PR_UPDATE_EVENTS = [
  'pull_request.opened',
  'pull_request.reopened',
  'pull_request.ready_for_review',
  'pull_request.synchronize',
  'pull_request.converted_to_draft',
] as const;
export const PR_CLOSED_EVENT = 'pull_request.closed';

type PrContext = Context<(typeof PR_UPDATE_EVENTS)[number] | typeof PR_CLOSED_EVENT>;

/** The fields of a webhook's pull_request object that a snapshot needs (pull_request and pull_request_review). */
export interface PullRequestFields {
  head: { sha: string; ref: string; repo: { clone_url: string } | null };
  base: { sha: string; ref: string };
  user: { login: string } | null;
  draft?: boolean;
  state: 'open' | 'closed';
  labels?: Array<{ name: string }>;
  updated_at?: string;
}

export function snapshotFrom(pull: PullRequestFields, baseCloneUrl: string): PrSnapshot {
  return {
    headSha: pull.head.sha,
    headRef: pull.head.ref,
    baseRef: pull.base.ref,
    baseSha: pull.base.sha,
    // user is null only for deleted accounts (GitHub shows them as ghost).
    author: pull.user?.login ?? 'ghost',
    draft: pull.draft ?? false,
    // head.repo is null when the fork was deleted; the base repo still serves refs/pull/N/head.
    headCloneUrl: pull.head.repo?.clone_url ?? baseCloneUrl,
    state: pull.state,
    labels: (pull.labels ?? []).map((l) => l.name),
    fromFork: !pull.head.repo || pull.head.repo.clone_url !== baseCloneUrl,
    ...(pull.updated_at ? { updatedAt: pull.updated_at } : {}),
  };
}

export function onPullRequest({ deliver, logger }: HandlerDeps) {
  return async (context: PrContext): Promise<void> => {
    const { payload } = context;
    const repo = repoRefFrom(payload);
    if (!repo) {
      logger.info({ deliveryId: context.id, event: `pull_request.${payload.action}` }, 'no installation on event; ignored');
      return;
    }
    const pr = { repo, number: payload.pull_request.number };
    const snapshot = snapshotFrom(payload.pull_request, repo.cloneUrl);
    const base = { deliveryId: context.id, actor: payload.sender.login };
    if (payload.action === 'closed') {
      const mergeCommitSha = payload.pull_request.merged ? (payload.pull_request.merge_commit_sha ?? undefined) : undefined;
      await deliver.pr({
        pr,
        snapshot,
        event: { type: 'pr-closed', ...base, merged: payload.pull_request.merged === true, ...(mergeCommitSha ? { mergeCommitSha } : {}) },
      });
      return;
    }
    await deliver.pr({ pr, snapshot, event: { type: 'pr-updated', ...base, action: payload.action, pr: snapshot } });
  };
}
