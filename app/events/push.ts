// push to the default branch → pushWorkflow (drift schedules, open PRs into it planned again, and deploys
// with `deployOnPush`). Other branches, tags and branch deletions are ignored.
import type { Context } from 'probot';
import type { HandlerDeps } from './deps.ts';
import { repoRefFrom } from './repo-ref.ts';

export const PUSH_EVENT = 'push';

export function onPush({ deliver, logger }: HandlerDeps) {
  return async (context: Context<typeof PUSH_EVENT>): Promise<void> => {
    const { payload } = context;
    const log = logger.child({ deliveryId: context.id, event: PUSH_EVENT });
    const defaultRef = `refs/heads/${payload.repository.default_branch}`;
    if (payload.ref !== defaultRef || payload.deleted || /^0+$/.test(payload.after)) return;
    const owner = payload.repository.owner;
    const repo = owner ? repoRefFrom({ ...payload, repository: { ...payload.repository, owner: { login: owner.login } } }) : undefined;
    if (!repo) {
      log.info('no installation on event; ignored');
      return;
    }
    const outcome = await deliver.push(context.id, { repo, before: payload.before, after: payload.after, actor: payload.sender?.login ?? payload.pusher.name, branch: payload.repository.default_branch });
    log.info({ sha: payload.after, outcome }, 'push to the default branch');
  };
}
