// push to the default branch → pushWorkflow (drift schedules, and deploys with `deployOnPush`). Other
// branches, tags and branch deletions are ignored.
import type { Context } from 'probot';
import type { Logger } from '../logger.ts';
import { repoRefFrom } from './repo-ref.ts';
import { type PushInput } from '../../shared/contracts.ts';

export const PUSH_EVENT = 'push';

/** Starts the push's workflow; a redelivery of the same push finds it started and does nothing more. */
export type StartPush = (input: PushInput) => Promise<'started' | 'duplicate' | 'not-allowed'>;

export function onPush(startPush: StartPush, logger: Logger) {
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
    const outcome = await startPush({ repo, before: payload.before, after: payload.after, actor: payload.sender?.login ?? payload.pusher.name });
    log.info({ sha: payload.after, outcome }, 'push to the default branch');
  };
}
