// Who may run a command (`permissions` in the base branch's .terrapin.yml): a pure decision over facts the
// workflow fetched from GitHub, in the style of the apply requirements.
import type { CommandPermissions, CommandRule, PermissionLevel } from '../shared/config.ts';
import type { Permission } from '../activities/github.ts';

const RANK: Record<Permission, number> = { none: 0, read: 1, write: 2, admin: 3 };

export interface ActorFacts {
  login: string;
  permission: Permission;
  /** The rule's teams (org/slug) the actor is an active member of. */
  teams: string[];
  isAuthor: boolean;
}

export type Verdict =
  | { allowed: true }
  | { allowed: false; because: 'level'; required: PermissionLevel }
  | { allowed: false; because: 'not-listed'; users: string[]; teams: string[] }
  | { allowed: false; because: 'author' };

export function mayRun(rule: CommandRule, actor: ActorFacts): Verdict {
  if (RANK[actor.permission] < RANK[rule.level]) return { allowed: false, because: 'level', required: rule.level };
  const listed = rule.users.length > 0 || rule.teams.length > 0;
  const inList = rule.users.some((u) => u.toLowerCase() === actor.login.toLowerCase()) || actor.teams.length > 0;
  if (listed && !inList) return { allowed: false, because: 'not-listed', users: rule.users, teams: rule.teams };
  if (actor.isAuthor && !rule.allowAuthor) return { allowed: false, because: 'author' };
  return { allowed: true };
}

/** What a repository without `permissions` (or with a broken .terrapin.yml) gets. */
export const DEFAULT_PERMISSIONS: CommandPermissions = {
  plan: { level: 'write', users: [], teams: [], allowAuthor: true },
  approve: { level: 'write', users: [], teams: [], allowAuthor: false },
  apply: { level: 'write', users: [], teams: [], allowAuthor: true },
  unlock: { level: 'write', users: [], teams: [], allowAuthor: true },
};
