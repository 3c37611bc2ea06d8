// What the policy in `.terrapin.yml` decides for commands, read from that one file at one commit
// (readFileAt: no clone, no work dir), within the operator's rules.
import { availableParallelism } from 'node:os';
import type { DefaultBranchPolicy, FileAtRevision, PermissionsAtInput, PolicyAtInput } from '../shared/activity-contracts.ts';
import type { GitDeps } from './git.ts';
import { readFileAt } from './repo-files.ts';
import { CONFIG_FILE, parseRepoConfigFile } from './repo-config/index.ts';
import type { CommandPermissions, RepoConfig } from '../shared/config.ts';
import { capByOperator, operatorRuleErrors } from './repo-config/policy.ts';
import { baseBranchAllowed, DEFAULT_OPERATOR_POLICY, effectiveRules, type EffectiveRules } from './operator-policy.ts';

const rulesFor = (deps: GitDeps, repo: { owner: string; name: string }): EffectiveRules =>
  effectiveRules(deps.operatorPolicy ?? DEFAULT_OPERATOR_POLICY, `${repo.owner}/${repo.name}`);

/**
 * The file's config as the policy that counts, capped by the operator. A file that is missing, refused,
 * broken or sets what the operator does not allow counts as none: the defaults (what an empty file gives).
 */
function policyOf(file: FileAtRevision, rules: EffectiveRules): RepoConfig {
  const parse = (text: string) => parseRepoConfigFile(text, { cpuCount: availableParallelism(), file: CONFIG_FILE });
  const parsed = file.refused === undefined && file.text !== undefined ? parse(file.text) : undefined;
  const usable = parsed?.config && operatorRuleErrors(parsed.positions ?? new Map(), CONFIG_FILE, rules).length === 0 ? parsed.config : undefined;
  return capByOperator(usable ?? parse('').config!, rules);
}

/** The policy of the default branch's head now, for a PR into `pr.baseBranch`. */
export async function policyAt(input: PolicyAtInput, deps: GitDeps): Promise<DefaultBranchPolicy> {
  const rules = rulesFor(deps, input.repo);
  const file = await readFileAt({ repo: input.repo, ref: 'HEAD', path: CONFIG_FILE }, deps);
  const config = policyOf(file, rules);
  return {
    sha: file.sha,
    ...(file.branch ? { branch: file.branch } : {}),
    permissions: config.permissions,
    allowForks: config.allowForks,
    baseAllowed: baseBranchAllowed(rules, input.pr.baseBranch, file.branch),
    allowedBaseBranches: rules.allowedBaseBranches.length ? rules.allowedBaseBranches : file.branch ? [file.branch] : [],
    ...(config.lockTtl ? { lockTtl: config.lockTtl } : {}),
    ...(rules.policyOwners.users.length || rules.policyOwners.teams.length ? { policyOwners: rules.policyOwners } : {}),
  };
}

/** `.terrapin.yml`'s command permissions at `sha` itself (a commit already on the default branch). */
export async function permissionsAt(input: PermissionsAtInput, deps: GitDeps): Promise<CommandPermissions> {
  const file = await readFileAt({ repo: input.repo, ref: input.sha, path: CONFIG_FILE }, deps);
  return policyOf(file, rulesFor(deps, input.repo)).permissions;
}
