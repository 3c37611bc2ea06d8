// Whether an actor may run a command under a `permissions` rule: the facts (their permission on the
// repository, the rule's teams they are in) come from GitHub through activities; mayRun decides.
import type { CommandPermissions, CommandRule } from '../shared/config.ts';
import { getPermission, permissionsAt as readPermissionsAt, policyAt, requirementFacts } from './activities.ts';
import { mayRun, type Verdict } from './permissions.ts';
import type { RepoRef } from '../shared/contracts.ts';
import type { Permission } from '../activities/github.ts';
import type { DefaultBranchPolicy } from '../shared/activity-contracts.ts';

export type { DefaultBranchPolicy } from '../shared/activity-contracts.ts';

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
  const permission = actor.permission ?? (await getPermission({ repo, login: actor.login }));
  const teams =
    rule.teams.length > 0 && permission !== 'none'
      ? ((
          await requirementFacts({
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

/**
 * The command permissions of `.terrapin.yml` at `sha` itself (defaults when it has none or is broken).
 * Only for commits already on the default branch (a merge's first parent, a drift offer): a PR's
 * commands are judged by defaultBranchPolicy. `prNumber` is kept for callers; the read needs no PR.
 */
export async function permissionsAt(repo: RepoRef, sha: string, _prNumber = 0): Promise<CommandPermissions> {
  return readPermissionsAt({ repo, sha });
}

/** Reads the policy at the default branch's head now (an activity: the workflow never guesses it). */
export async function defaultBranchPolicy(repo: RepoRef, prNumber: number, pr: { baseBranch: string; labels: readonly string[] }): Promise<DefaultBranchPolicy> {
  return policyAt({ repo, prNumber, pr });
}
