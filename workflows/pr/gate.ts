// Who may do what on a PR, and when a command comes too late or too often. Every rule is read from the
// default branch's (reviewed) `.terrapin.yml`: the PR's own copy could say anything.
import { log } from '@temporalio/workflow';
import type { Permission } from '../../activities/github.ts';
import type { CommandPermissions, GuardedCommand } from '../../shared/config.ts';
import { commandKey, type PrEvent } from '../../shared/contracts.ts';
import { pullRequestCommitLogins } from '../activities.ts';
import type { DefaultBranchPolicy } from '../../shared/activity-contracts.ts';
import { defaultBranchPolicy, judgeActor } from '../authorize.ts';
import type { PlanRecord } from './state.ts';
import { shortSha, type PrSession } from './session.ts';

export type CommandEvent = Extract<PrEvent, { type: 'command' }>;

export const SEEN_LIMIT = 500;
/** Logins remembered as answered outsiders / pushers per PR: bounded like `seen`. */
export const LOGINS_LIMIT = 200;
const RANK: Record<Permission, number> = { none: 0, read: 1, write: 2, admin: 3 };
export const sameLogin = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Appends to a bounded list, oldest forgotten first. */
export function remember(list: string[], value: string, limit: number): void {
  list.push(value);
  if (list.length > limit) list.splice(0, list.length - limit);
}

/** GitHub timestamps have whole seconds: a command counts as written before `ms` only if its second is earlier. */
export const writtenBefore = (createdAt: string | undefined, ms: number | undefined) =>
  createdAt !== undefined && ms !== undefined && Date.parse(createdAt) < Math.floor(ms / 1000) * 1000;

/**
 * A comment or review counts once, by its id: `X-GitHub-Delivery` is unsigned, so a captured signed
 * body re-sent with a new delivery id must do nothing more. False for a command already handled.
 */
export function countsOnce(pr: PrSession, event: PrEvent): boolean {
  const key = commandKey(event);
  if (!key) return true;
  const keys = (pr.s.commandKeys ??= []);
  if (keys.includes(key)) {
    log.info('command already handled; ignored', { key, deliveryId: event.deliveryId });
    return false;
  }
  remember(keys, key, SEEN_LIMIT);
  return true;
}

/**
 * On public repositories anyone can comment. Someone who may run no command at all is answered once per
 * PR and then ignored, gets nothing (not even 👀) for words that are no command, and nothing runs: an
 * outsider cannot make the bot spend the installation's rate limit. True when the event goes no further.
 */
export async function turnedAway(pr: PrSession, event: Extract<PrEvent, { type: 'command' | 'bad-command' }>): Promise<boolean> {
  const { actor } = event;
  const permission = await pr.permissionOf(actor);
  if (permission === 'write' || permission === 'admin') return false;
  // A reader may still be let in by a rule that asks for read only: the reviewed rules, as for the command itself.
  const lowest = permission === 'none' ? 'write' : lowestLevel((await commandPolicy(pr)).permissions);
  if (RANK[permission] >= RANK[lowest]) return false;
  const answered = (pr.s.outsidersAnswered ??= []);
  if (event.type === 'bad-command' || answered.some((l) => sameLogin(l, actor))) {
    log.info('command from someone who may run none; ignored', { actor, deliveryId: event.deliveryId });
    return true;
  }
  remember(answered, actor, LOGINS_LIMIT);
  if (event.command.name === 'help') await pr.reply(event.deliveryId, 'help', {});
  else await pr.reply(event.deliveryId, 'not-allowed', { actor, command: event.command.name, required: lowest, outsider: true });
  return true;
}

/**
 * Whether the actor may run the command under `permissions` in the default branch's .terrapin.yml; replies
 * why not. Whoever pushed to the PR, or wrote or committed one of its commits, counts as its author.
 */
export async function authorized(pr: PrSession, command: GuardedCommand, actor: string, deliveryId: string): Promise<boolean> {
  const { snapshot } = pr;
  const policy = await commandPolicy(pr);
  if (!policy.baseAllowed) {
    await refuseBase(pr, `reply-${deliveryId}`, snapshot.headSha, policy, 'command');
    return false;
  }
  const rule = policy.permissions[command];
  const context = { login: actor, isAuthor: actor === snapshot.author, number: pr.number, headSha: snapshot.headSha, baseRef: snapshot.baseRef, permission: await pr.permissionOf(actor) };
  const verdict = await judgeActor(pr.repo, rule, context);
  if (verdict.allowed) {
    const authorship = rule.allowAuthor ? undefined : await authorshipOf(pr, actor);
    if (!authorship) return true;
    if (command === 'approve') await pr.reply(deliveryId, 'approve-own-commits', { actor, pushed: authorship === 'pushed' });
    else await pr.reply(deliveryId, 'not-for-author', { actor, command });
    return false;
  }
  if (verdict.because === 'level') await pr.reply(deliveryId, 'not-allowed', { actor, command, required: verdict.required });
  else if (verdict.because === 'not-listed') await pr.reply(deliveryId, 'not-listed', { actor, command, users: verdict.users, teams: verdict.teams, baseRef: snapshot.baseRef });
  else if (command === 'approve') await pr.reply(deliveryId, 'approve-own-pr', { actor });
  else await pr.reply(deliveryId, 'not-for-author', { actor, command });
  return false;
}

/**
 * Whether the actor may approve failed policy checks: a policy owner in the operator's policy file (a
 * listed user, or a member of a listed team), never an author of the change (the opener, a pusher, a
 * commit's author or committer); replies why not. `.terrapin.yml` has no say in who that is.
 */
export async function authorizedPolicyOwner(pr: PrSession, actor: string, deliveryId: string): Promise<boolean> {
  const { snapshot } = pr;
  const policy = await commandPolicy(pr);
  if (!policy.baseAllowed) {
    await refuseBase(pr, `reply-${deliveryId}`, snapshot.headSha, policy, 'command');
    return false;
  }
  const owners = policy.policyOwners ?? { users: [], teams: [] };
  if (owners.users.length === 0 && owners.teams.length === 0) {
    await pr.reply(deliveryId, 'policy-owners-none', { actor });
    return false;
  }
  const rule = { level: 'write' as const, users: owners.users, teams: owners.teams, allowAuthor: false };
  const isAuthor = sameLogin(actor, snapshot.author);
  const verdict = await judgeActor(pr.repo, rule, { login: actor, isAuthor, number: pr.number, headSha: snapshot.headSha, baseRef: snapshot.baseRef, permission: await pr.permissionOf(actor) });
  if (verdict.allowed) {
    const authorship = await authorshipOf(pr, actor);
    if (!authorship) return true;
    await pr.reply(deliveryId, 'approve-policies-own', { actor, pushed: authorship === 'pushed', committed: authorship === 'committed' });
    return false;
  }
  if (verdict.because === 'author') await pr.reply(deliveryId, 'approve-policies-own', { actor });
  else if (verdict.because === 'level') await pr.reply(deliveryId, 'not-allowed', { actor, command: 'approve-policies', required: verdict.required });
  else await pr.reply(deliveryId, 'not-policy-owner', { actor, users: owners.users, teams: owners.teams });
  return false;
}

/** Why the actor counts as an author though they did not open the PR: they pushed to its head, or wrote or committed one of its commits. */
async function authorshipOf(pr: PrSession, actor: string): Promise<'pushed' | 'committed' | undefined> {
  if ((pr.s.pushers ?? []).some((l) => sameLogin(l, actor))) return 'pushed';
  const logins = await pullRequestCommitLogins({ repo: pr.repo, number: pr.number });
  return logins.some((l) => sameLogin(l, actor)) ? 'committed' : undefined;
}

/** The opener and whoever pushed to the head: the authors a deploy of the merge knows without asking GitHub. */
export const knownAuthors = (pr: PrSession) => [pr.snapshot.author, ...(pr.s.pushers ?? []).filter((l) => !sameLogin(l, pr.snapshot.author))];

/** The default branch's policy as it is now, for this PR's base branch and labels. */
export const commandPolicy = (pr: PrSession): Promise<DefaultBranchPolicy> =>
  defaultBranchPolicy(pr.repo, pr.number, { baseBranch: pr.snapshot.baseRef, labels: pr.snapshot.labels ?? [] });

/** A button on the check run of another commit than the current plan's does nothing (replied why). */
export async function buttonOutdated(pr: PrSession, event: CommandEvent): Promise<boolean> {
  const sha = event.checkHeadSha;
  const { s, snapshot } = pr;
  if (event.source !== 'button' || !sha || sha === snapshot.headSha) return false;
  const button = event.command.name === 'approve' ? 'Approve' : 'Apply';
  await pr.reply(event.deliveryId, 'button-outdated', { actor: event.actor, button, command: event.command.name, shortSha: shortSha(sha), currentShortSha: s.plan?.sha === snapshot.headSha ? shortSha(s.plan.sha) : undefined });
  return true;
}

/** A command written before the plan was posted never saw it: it neither approves nor applies it (replied why). */
export async function predatesPlan(pr: PrSession, event: CommandEvent, plan: PlanRecord): Promise<boolean> {
  if (!writtenBefore(event.createdAt, plan.postedAt)) return false;
  await pr.reply(event.deliveryId, 'approval-outdated', { actor: event.actor, command: event.command.name, review: event.source === 'review', shortSha: shortSha(plan.sha) });
  return true;
}

/** The plan a command acts on, or the reason there is none (already replied). */
export async function currentPlan(pr: PrSession, deliveryId: string, command: string): Promise<PlanRecord | undefined> {
  const { s, job } = pr;
  if (job) {
    await pr.reply(deliveryId, 'busy', { command, job: job.kind });
    return undefined;
  }
  const plan = s.plan;
  if (plan?.status === 'applied' && plan.sha === s.snapshot?.headSha) {
    await pr.reply(deliveryId, 'already-applied', { command, shortSha: shortSha(plan.sha) });
    return undefined;
  }
  if (!plan || plan.status !== 'ready' || plan.sha !== s.snapshot?.headSha) {
    await pr.reply(deliveryId, 'no-plan', { command });
    return undefined;
  }
  if (!plan.summary.hasChanges) {
    await pr.reply(deliveryId, 'nothing-to-apply', { command });
    return undefined;
  }
  return plan;
}

/**
 * Says once why a PR whose base branch is not allowed is neither planned nor applied: once per base
 * branch for pushes, at most once per push for commands (a refused command otherwise stays quiet).
 */
export async function refuseBase(pr: PrSession, key: string, sha: string, policy: DefaultBranchPolicy, by: 'plan' | 'command'): Promise<void> {
  const baseRef = pr.snapshot.baseRef;
  const last = pr.s.baseRefusal;
  const told = last?.baseRef === baseRef && (by === 'plan' || last.sha === sha);
  if (told) return;
  pr.s.baseRefusal = { baseRef, sha };
  const allowed = policy.allowedBaseBranches;
  const onlyDefault = allowed.length === 1 && allowed[0] === policy.branch;
  await pr.post(key, 'base-refused', { baseRef, defaultBranch: policy.branch, allowed, onlyDefault, shortSha: shortSha(sha) });
}

/** The lowest permission level any guarded command asks for: below it, someone may run no command. */
function lowestLevel(rules: CommandPermissions): Permission {
  const levels = Object.values(rules).map((r) => r.level);
  return levels.reduce<Permission>((low, level) => (RANK[level] < RANK[low] ? level : low), 'admin');
}
