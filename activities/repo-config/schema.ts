// The schema of `.terrapin.yml`. docs/config.md documents every key here; keep the two in step.
import { posix } from 'node:path';
import { isMap, isScalar, type Node } from 'yaml';
import { checkCron } from './cron.ts';
import { closestMatch, quote } from './errors.ts';
import { plumbingEnvProblem } from './env-names.ts';
import type { ApplyRequirement, InputRef } from '../../shared/config.ts';
import { boolean, define, got, indexedList, integer, invalid, list, mapOf, object, oneOf, report, string, stringOrList, type Invalid } from './yaml-checks.ts';

export const PROJECT_NAME = /^[a-z0-9][a-z0-9_.-]*$/i;
const WORKSPACE = /^[A-Za-z0-9_.-]+$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\[bot\])?$/;
const GITHUB_TEAM = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\/[A-Za-z0-9._-]+$/;

const matching = (pattern: RegExp, what: string) =>
  string((s) => (pattern.test(s) ? s : invalid(`must be ${what}, got ${quote(s)}`)));

const nonEmpty = (what: string) => string((s) => (s.trim() ? s : invalid(`must be ${what}, got ""`)));

export const projectName = matching(PROJECT_NAME, 'a project name (letters, digits, "_", "." and "-", starting with a letter or digit)');

/** Relative, normalised, inside the repository; `.` is the root. */
export function normaliseRepoDir(dir: string): string | Invalid {
  const bad = invalid(`must be a path inside the repository, got ${quote(dir)}`);
  if (dir.includes('\0') || dir.includes('\\') || dir.trim() === '') return bad;
  if (posix.isAbsolute(dir) || /^[A-Za-z]:/.test(dir)) return bad;
  const normalised = posix.normalize(dir).replace(/\/+$/, '') || '.';
  if (normalised === '..' || normalised.startsWith('../')) return bad;
  return normalised;
}

const glob = string((s) => {
  if (!s.trim()) return invalid('must be a glob, got ""');
  if (s.includes('\0') || posix.isAbsolute(s)) return invalid(`must be a glob relative to the project dir, got ${quote(s)}`);
  return s;
});

const inputRef = string<InputRef>((s) => {
  const m = /^(.+)\.outputs\.([A-Za-z_][A-Za-z0-9_-]*)$/.exec(s);
  if (!m || !PROJECT_NAME.test(m[1])) return invalid(`must be "<project>.outputs.<name>", got ${quote(s)}`);
  return { project: m[1], output: m[2] };
});

const approvedOptions = object({
  count: integer(1),
  users: list(matching(GITHUB_LOGIN, 'a GitHub login')),
  teams: list(matching(GITHUB_TEAM, 'a team as "org/team"')),
});
const destroyNeedsOptions = object({ approvals: integer(1) }, { required: ['approvals'] });

const SIMPLE_REQUIREMENTS = ['approved', 'mergeable', 'undiverged'] as const;
const REQUIREMENT_KEYS = ['approved', 'destroyNeeds'];

/** `approved` | `mergeable` | `undiverged` | `{ approved: {…} }` | `{ destroyNeeds: { approvals } }`. */
const applyRequirement = define<ApplyRequirement>((node, path, ctx) => {
  if (isScalar(node) && typeof node.value === 'string') {
    const kind = oneOf(SIMPLE_REQUIREMENTS)(node, path, ctx);
    return kind === 'approved' ? { kind, count: 1, users: [], teams: [] } : kind && { kind };
  }
  if (!isMap(node) || node.items.length !== 1 || !isScalar(node.items[0].key)) {
    const shape = isMap(node) ? `a mapping with ${node.items.length} keys` : got(node).slice(4);
    report(ctx, node, path, `must be "approved", "mergeable", "undiverged", or a mapping with one key \`approved\` or \`destroyNeeds\`, got ${shape}`);
    return undefined;
  }
  const key = String(node.items[0].key.value);
  const valueNode = node.items[0].value as Node | null;
  if (key === 'approved') {
    const o = approvedOptions(valueNode, [...path, key], ctx);
    return o && { kind: 'approved', count: o.count ?? 1, users: o.users ?? [], teams: o.teams ?? [] };
  }
  if (key === 'destroyNeeds') {
    const o = destroyNeedsOptions(valueNode, [...path, key], ctx);
    return o?.approvals === undefined ? undefined : { kind: 'destroyNeeds', approvals: o.approvals };
  }
  const near = closestMatch(key, REQUIREMENT_KEYS);
  report(ctx, node.items[0].key, [...path, key], `unknown requirement; ${near ? `did you mean \`${near}\`?` : 'expected `approved` or `destroyNeeds`'}`);
  return undefined;
});

export const applyRequirements = list(applyRequirement);
const onFailure = oneOf(['rollback', 'none']);
const commands = stringOrList(nonEmpty('a shell command'));

const settingsFields = {
  workspace: matching(WORKSPACE, 'a workspace name (letters, digits, "_", "." and "-")'),
  terraform: oneOf(['terraform', 'tofu']),
  autoplan: object({ enabled: boolean(), whenModified: list(glob) }),
  dependsOn: list(projectName),
  inputs: mapOf(inputRef, (k) => (VARIABLE_NAME.test(k) ? undefined : invalid(`must be a Terraform variable name, got ${quote(k)}`))),
  applyRequirements,
  onFailure,
  lock: oneOf(['onPlan', 'onApply', 'off']),
  apply: oneOf(['beforeMerge', 'afterMerge']),
  hooks: object({ prePlan: commands, postPlan: commands, preApply: commands, postApply: commands }),
  env: mapOf(string(), (k) => {
    if (!ENV_NAME.test(k)) return invalid(`must be an environment variable name, got ${quote(k)}`);
    const plumbing = plumbingEnvProblem(k);
    return plumbing ? invalid(plumbing) : undefined;
  }),
  when: list(
    object(
      { baseBranch: nonEmpty('a branch glob'), label: nonEmpty('a label'), applyRequirements, onFailure },
      { oneOfRequired: ['baseBranch', 'label'] },
    ),
  ),
  drift: object({ schedule: string(checkCron), reconcile: boolean() }),
};

const perProjectOnly = '`name` and `dir` are set per project, not in `defaults`';

export const projectSchema = object(
  { name: projectName, dir: string(normaliseRepoDir), ...settingsFields },
  { required: ['name', 'dir'] },
);
export const defaultsSchema = object(settingsFields, { notHere: { name: perProjectOnly, dir: perProjectOnly } });

/** Who may run a command: at least `level`, and (when listed) one of `users` or a member of one of `teams`. */
const commandRule = object({
  level: oneOf(['read', 'write', 'admin']),
  users: list(matching(GITHUB_LOGIN, 'a GitHub login')),
  teams: list(matching(GITHUB_TEAM, 'a team as "org/team"')),
  allowAuthor: boolean(),
});
const permissionsSchema = object({ plan: commandRule, approve: commandRule, apply: commandRule, unlock: commandRule });

export const fileSchema = object({
  version: oneOf([1]),
  parallelism: integer(1),
  defaults: defaultsSchema,
  projects: indexedList(projectSchema),
  onFailure,
  allowForks: boolean(),
  deployOnPush: boolean(),
  permissions: permissionsSchema,
  /** How many open PRs a push to their base branch re-plans at once. */
  replanOnBaseChange: object({ concurrency: integer(1) }),
});

export type WrittenFile = NonNullable<ReturnType<typeof fileSchema>>;
export type WrittenProject = NonNullable<ReturnType<typeof projectSchema>>;
