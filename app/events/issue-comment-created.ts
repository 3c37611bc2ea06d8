// issue_comment.created on a pull request → command, or bad-command for unknown/invalid commands.
import type { Context } from 'probot';
import { parseComment } from '../commands.ts';
import type { Deliver } from '../deliver.ts';
import type { Logger } from '../logger.ts';
import { repoRefFrom } from './repo-ref.ts';

export const ISSUE_COMMENT_CREATED_EVENT = 'issue_comment.created';

export function onIssueCommentCreated(deliver: Deliver, logger: Logger) {
  return async (context: Context<typeof ISSUE_COMMENT_CREATED_EVENT>): Promise<void> => {
    const { payload } = context;
    const log = logger.child({ deliveryId: context.id, event: ISSUE_COMMENT_CREATED_EVENT });
    // Issues share this event; only pull requests have a workflow.
    if (!payload.issue.pull_request) return;
    // Our own replies (and other bots') must never be read as commands.
    if (payload.sender.type === 'Bot') return;
    const parse = parseComment(payload.comment.body);
    if (parse.kind === 'none') return;
    const repo = repoRefFrom(payload);
    if (!repo) {
      log.info('no installation on event; ignored');
      return;
    }
    const pr = { repo, number: payload.issue.number };
    const base = { deliveryId: context.id, actor: payload.sender.login, commentId: payload.comment.id };
    if (parse.kind === 'command') {
      await deliver({ pr, event: { type: 'command', ...base, source: 'comment', command: parse.command } });
    } else {
      await deliver({ pr, event: { type: 'bad-command', ...base, parse } });
    }
  };
}
