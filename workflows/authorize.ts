// Whether an actor may run a command under a `permissions` rule: the facts (their permission on the
// repository, the rule's teams they are in) come from GitHub through activities; mayRun decides.
import type { CommandPermissions, CommandRule } from '../activities/repo-config/types.ts';
import { github, workspace } from './pr-activities.ts';
import { DEFAULT_PERMISSIONS, mayRun, type Verdict } from './permissions.ts';
import type { RepoRef } from './types.ts';
import type { Permission } from '../activities/github.ts';

export interface ActorContext {
  login: string;
  isAuthor: boolean;
  /** The PR or issue the command came from, and a commit of it (team lookups are scoped to the request). */
  number: number;
  headSha: string;
  baseRef?: string;
  /** Their permission on the repository when the caller already asked GitHub for it. */
  permission?: Permission;
}

export async function judgeActor(repo: RepoRef, rule: CommandRule, actor: ActorContext): Promise<Verdict> {
  const permission = actor.permission ?? (await github.getPermission({ repo, login: actor.login }));
  const teams =
    rule.teams.length > 0 && permission !== 'none'
      ? ((
          await github.requirementFacts({
            repo,
            number: actor.number,
            headSha: actor.headSha,
            baseRef: actor.baseRef ?? '',
            mergeable: false,
            divergence: false,
            approvers: [actor.login],
            teams: rule.teams,
          })
        ).teamsOf[actor.login] ?? [])
      : [];
  return mayRun(rule, { login: actor.login, permission, teams, isAuthor: actor.isAuthor });
}

/** The command permissions of `.terrapin.yml` at `sha` (defaults when it has none or is broken). */
export async function permissionsAt(repo: RepoRef, sha: string, prNumber = 0): Promise<CommandPermissions> {
  const checkout = await workspace.checkout({ repo, prNumber, cloneUrl: repo.cloneUrl, sha });
  return checkout.permissions ?? DEFAULT_PERMISSIONS;
}
