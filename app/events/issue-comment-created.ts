// issue_comment.created on a pull request → command, or bad-command for unknown/invalid commands; on a
// drift issue → its reconcile workflow; on an operator's gate issue → the request waiting behind it.
import type { Context } from 'probot';
import { parseComment } from '../commands.ts';
import type { HandlerDeps } from './deps.ts';
import { repoRefFrom } from './repo-ref.ts';
import { driftIssueProject } from '../../shared/contracts.ts';
import { gateIssueTarget } from '../../shared/operator.ts';

export const ISSUE_COMMENT_CREATED_EVENT = 'issue_comment.created';

export function onIssueCommentCreated({ deliver, logger }: HandlerDeps) {
  return async (context: Context<typeof ISSUE_COMMENT_CREATED_EVENT>): Promise<void> => {
    const { payload } = context;
    const log = logger.child({ deliveryId: context.id, event: ISSUE_COMMENT_CREATED_EVENT });
    // Our own replies (and other bots') must never be read as commands.
    if (payload.sender.type === 'Bot') return;
    // Issues share this event: of them, only drift issues take a command (`/approve` reconciles, `/drift`
    // checks again), handed to the project's reconcile workflow.
    if (!payload.issue.pull_request) {
      // An operator's apply or destroy request: every command goes to the run waiting behind it, which
      // approves with `/approve` and answers anything else.
      const gateTarget = gateIssueTarget(payload.issue);
      if (gateTarget) {
        const parsed = parseComment(payload.comment.body);
        const repo = repoRefFrom(payload);
        if (!repo || parsed.kind !== 'command') return;
        const comment = { deliveryId: context.id, actor: payload.sender.login, commentId: payload.comment.id, issueNumber: payload.issue.number, ...createdAt(payload.comment.created_at) };
        await deliver.gate(repo, gateTarget, { type: 'command', command: parsed.command.name, ...comment });
        return;
      }
      const project = driftIssueProject(payload.issue);
      const parsed = project ? parseComment(payload.comment.body) : undefined;
      const repo = repoRefFrom(payload);
      if (!project || !repo || parsed?.kind !== 'command') return;
      const name = parsed.command.name;
      if (name !== 'approve' && name !== 'drift') return;
      await deliver.reconcile(repo, project, { type: name, deliveryId: context.id, actor: payload.sender.login, commentId: payload.comment.id, issueNumber: payload.issue.number, ...createdAt(payload.comment.created_at) });
      return;
    }
    const parse = parseComment(payload.comment.body);
    if (parse.kind === 'none') return;
    const repo = repoRefFrom(payload);
    if (!repo) {
      log.info('no installation on event; ignored');
      return;
    }
    const pr = { repo, number: payload.issue.number };
    const base = { deliveryId: context.id, actor: payload.sender.login, commentId: payload.comment.id, ...createdAt(payload.comment.created_at) };
    if (parse.kind === 'command') {
      await deliver.pr({ pr, event: { type: 'command', ...base, source: 'comment', command: parse.command } });
    } else {
      await deliver.pr({ pr, event: { type: 'bad-command', ...base, parse } });
    }
  };
}

/** GitHub's timestamp, normalised to ISO (absent or unreadable: left out, and the workflow cannot date the comment). */
export function createdAt(value: string | null | undefined): { createdAt?: string } {
  const ms = Date.parse(value ?? '');
  return Number.isFinite(ms) ? { createdAt: new Date(ms).toISOString() } : {};
}
