// Apply requirements, one pure function each (in the style of probot-auto-merge). A result carries a
// template name and its data instead of text: every word the bot writes lives in comment-templates/,
// and rendering is an activity. Data holds only plain values so it can travel through workflow history.
import type { ApplyRequirement } from '../shared/config.ts';

export interface Approval {
  login: string;
  /** org/team slugs the approver belongs to. */
  teams: string[];
}

export interface RequirementContext {
  /** The PR author's login. */
  author: string;
  /**
   * Everyone who counts as an author of the change (the opener, whoever pushed to its head, its commits'
   * authors and committers): none of their approvals count. Absent: the opener alone.
   */
  authors?: string[];
  /** Approvals from users with write permission (already filtered by the workflow). */
  approvals: Approval[];
  /** GitHub's PR.mergeable: null while GitHub is still computing it. */
  mergeable: boolean | null;
  /** The base branch's current head. */
  baseSha: string;
  /** Where the PR branch forked from the base branch. */
  mergeBaseSha: string;
  plan: { destroy: number };
}

export interface RequirementResult {
  name: string;
  status: 'met' | 'unmet';
  /** Under comment-templates/, e.g. 'requirements/approved'. */
  template: string;
  data: Record<string, unknown>;
}

export type Requirement = (ctx: RequirementContext) => RequirementResult;

const sameLogin = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const stripAt = (login: string) => login.replace(/^@/, '');

/** Approvals other than the authors', one per login (GitHub logins are case-insensitive). */
function approvalsByOthers(ctx: RequirementContext): Approval[] {
  const seen = new Set<string>();
  const authors = [ctx.author, ...(ctx.authors ?? [])];
  return ctx.approvals.filter((a) => {
    const key = a.login.toLowerCase();
    if (authors.some((author) => sameLogin(a.login, author)) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const result = (name: string, met: boolean, data: Record<string, unknown>): RequirementResult => ({
  name,
  status: met ? 'met' : 'unmet',
  template: `requirements/${name}`,
  data: { met, ...data },
});

export interface ApprovedOptions {
  /** Approvals needed (default 1). */
  count?: number;
  /** When users and/or teams are given, only approvals from those users or members of those teams count. */
  users?: string[];
  teams?: string[];
}

export function approved({ count = 1, users = [], teams = [] }: ApprovedOptions = {}): Requirement {
  const allowedUsers = users.map(stripAt);
  const restricted = allowedUsers.length > 0 || teams.length > 0;
  const qualifies = (a: Approval) =>
    !restricted ||
    allowedUsers.some((u) => sameLogin(u, a.login)) ||
    a.teams.some((t) => teams.some((allowed) => sameLogin(allowed, t)));
  return (ctx) => {
    const others = approvalsByOthers(ctx);
    const approvers = others.filter(qualifies).map((a) => a.login);
    const notCounted = others.filter((a) => !qualifies(a)).map((a) => a.login);
    return result('approved', approvers.length >= count, {
      required: count,
      author: ctx.author,
      approvers,
      notCounted,
      restricted,
      users: allowedUsers,
      teams,
    });
  };
}

export const mergeable: Requirement = (ctx) =>
  result('mergeable', ctx.mergeable === true, {
    state: ctx.mergeable === null ? 'unknown' : ctx.mergeable ? 'clean' : 'conflicts',
  });

/** The PR branch contains the base branch's head, so the plan saw everything already on the base. */
export const undiverged: Requirement = (ctx) =>
  result('undiverged', ctx.baseSha === ctx.mergeBaseSha, {
    baseSha: ctx.baseSha,
    mergeBaseSha: ctx.mergeBaseSha,
    baseShort: ctx.baseSha.slice(0, 7),
    mergeBaseShort: ctx.mergeBaseSha.slice(0, 7),
  });

/** Plans that destroy anything need `approvals` approvals from writers other than the author. */
export function destroyNeeds({ approvals }: { approvals: number }): Requirement {
  return (ctx) => {
    const approvers = approvalsByOthers(ctx).map((a) => a.login);
    const destroy = ctx.plan.destroy;
    return result('destroy-needs', destroy === 0 || approvers.length >= approvals, {
      destroy,
      required: approvals,
      author: ctx.author,
      approvers,
    });
  };
}

/**
 * A plan whose policy checks failed applies only once a policy owner (the operator's list, never an
 * author of the change) approved it with `/approve-policies`; the workflow checks who may, and passes
 * the approvals of this plan.
 */
export function policiesPassed({ failed, approvedBy, project }: { failed: string[]; approvedBy: string[]; project?: string }): RequirementResult {
  return result('policies', failed.length === 0 || approvedBy.length > 0, { failed, approvedBy, ...(project ? { project } : {}) });
}

/** Every requirement's result, in the given order (nothing short-circuits: users see all that is missing). */
export function evaluate(requirements: readonly Requirement[], ctx: RequirementContext): RequirementResult[] {
  return requirements.map((requirement) => requirement(ctx));
}

export const allMet = (results: readonly RequirementResult[]) => results.every((r) => r.status === 'met');

/** The approval requirements (`approved`, `destroyNeeds`) of `config`: the ones a change already merged, or an operator's request, still has. */
export const approvalRequirements = (config: readonly ApplyRequirement[]) => config.filter((r) => r.kind === 'approved' || r.kind === 'destroyNeeds');

/**
 * What the approval requirements still miss, over the approvals so far. Outside an open PR (a merged
 * revision, an operator's request) `mergeable` and `undiverged` do not apply.
 */
export function unmetApprovals(
  counted: readonly ApplyRequirement[],
  ctx: { author: string; authors?: string[]; approvers: string[]; teamsOf: Record<string, string[]>; destroy: number },
): RequirementResult[] {
  const results = evaluate(requirementsFrom(counted), {
    author: ctx.author,
    ...(ctx.authors ? { authors: ctx.authors } : {}),
    approvals: ctx.approvers.map((login) => ({ login, teams: ctx.teamsOf[login] ?? [] })),
    mergeable: true,
    baseSha: '',
    mergeBaseSha: '',
    plan: { destroy: ctx.destroy },
  });
  return results.filter((r) => r.status === 'unmet');
}

/** The requirement functions for requirements as `.terrapin.yml` states them. */
export function requirementsFrom(config: readonly ApplyRequirement[]): Requirement[] {
  return config.map((r) => {
    switch (r.kind) {
      case 'approved':
        return approved({ count: r.count, users: r.users, teams: r.teams });
      case 'mergeable':
        return mergeable;
      case 'undiverged':
        return undiverged;
      case 'destroyNeeds':
        return destroyNeeds({ approvals: r.approvals });
    }
  });
}

/** Which GitHub facts these requirements need: nothing is fetched that no requirement reads. */
export function factsNeeded(config: readonly ApplyRequirement[]): { mergeable: boolean; divergence: boolean; teams: string[] } {
  return {
    mergeable: config.some((r) => r.kind === 'mergeable'),
    divergence: config.some((r) => r.kind === 'undiverged'),
    teams: [...new Set(config.flatMap((r) => (r.kind === 'approved' ? r.teams : [])))],
  };
}

/** What a project gets when `.terrapin.yml` says nothing: one approval from a writer other than the author. */
export const DEFAULT_REQUIREMENTS: readonly ApplyRequirement[] = [{ kind: 'approved', count: 1, users: [], teams: [] }];
