// Check-run buttons (Approve, Apply, Re-plan). The workflow sets each check run's external_id to its own
// workflow id, so the click is routed by that rather than by check_run.pull_requests (empty for forks):
// to the PR workflow, or for `terrapin/deploy: <project>` checks to the project's deploy queue.
import type { Context } from 'probot';
import type { HandlerDeps } from './deps.ts';
import { parseDeployWorkflowId, parsePrWorkflowId, type CheckAction, type CommandName, type ParsedCommand } from '../../shared/contracts.ts';
import { repoRefFrom } from './repo-ref.ts';

export const CHECK_RUN_REQUESTED_ACTION_EVENT = 'check_run.requested_action';

const COMMAND_FOR_ACTION: Record<CheckAction, CommandName> = { approve: 'approve', apply: 'apply', replan: 'plan' };

/** Per-project check runs are named `terrapin/plan: <project>` / `terrapin/apply: <project>`. */
const PROJECT_CHECK_NAME = /^terrapin\/(?:plan|apply): (.+)$/;

export function onCheckRunRequestedAction({ deliver, logger }: HandlerDeps) {
  return async (context: Context<typeof CHECK_RUN_REQUESTED_ACTION_EVENT>): Promise<void> => {
    const { payload } = context;
    const log = logger.child({ deliveryId: context.id, event: CHECK_RUN_REQUESTED_ACTION_EVENT });
    const identifier = payload.requested_action?.identifier ?? '';
    if (!Object.hasOwn(COMMAND_FOR_ACTION, identifier)) {
      log.info({ identifier }, 'unknown check-run action; ignored');
      return;
    }
    const repo = repoRefFrom(payload);
    if (!repo) {
      log.info('no installation on event; ignored');
      return;
    }
    const sameRepoAs = (t: { owner: string; repo: string }) => t.owner.toLowerCase() === repo.owner.toLowerCase() && t.repo.toLowerCase() === repo.name.toLowerCase();
    const deploy = parseDeployWorkflowId(payload.check_run.external_id ?? '');
    if (deploy) {
      if (!sameRepoAs(deploy) || identifier !== 'approve') {
        log.info({ externalId: payload.check_run.external_id, identifier }, 'deploy check action not taken; ignored');
        return;
      }
      await deliver.deploy(repo, deploy.project, { type: 'approve', deliveryId: context.id, actor: payload.sender.login, sha: payload.check_run.head_sha });
      return;
    }
    const target = parsePrWorkflowId(payload.check_run.external_id ?? '');
    if (!target || !sameRepoAs(target)) {
      log.info({ externalId: payload.check_run.external_id }, 'check run not created by a Terrapin PR workflow; ignored');
      return;
    }
    const project = PROJECT_CHECK_NAME.exec(payload.check_run.name)?.[1];
    const command: ParsedCommand = {
      name: COMMAND_FOR_ACTION[identifier as CheckAction],
      extraArgs: [],
      ...(project ? { project } : {}),
    };
    await deliver.pr({
      pr: { repo, number: target.number },
      event: { type: 'command', deliveryId: context.id, source: 'button', actor: payload.sender.login, command, checkHeadSha: payload.check_run.head_sha },
    });
  };
}
