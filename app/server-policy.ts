// Loads the operator's policy file (TERRAPIN_SERVER_CONFIG, docs/server-config.md) at start: YAML checked
// with the same schema language as `.terrapin.yml`, so every problem is reported with file:line:col and
// the service refuses to start until all are fixed.
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { LineCounter, parseDocument, type Node } from 'yaml';
import { DEFAULT_OPERATOR_POLICY, POLICY_KEYS, type OperatorPolicy, type RepositoryRule } from '../activities/operator-policy.ts';
import { formatConfigError, quote } from '../activities/repo-config/errors.ts';
import { applyRequirements, policyChecks } from '../activities/repo-config/schema.ts';
import type { ConfigError } from '../shared/config.ts';
import { boolean, integer, invalid, list, object, oneOf, string, stringOrList, type CheckContext } from '../activities/repo-config/yaml-checks.ts';

const glob = (what: string) =>
  string((s) => (s.trim() && !s.includes('\0') ? s : invalid(`must be ${what}, got ${quote(s)}`)));
const ENV_GLOB = /^[A-Za-z0-9_*?[\]!-]+$/;
const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\[bot\])?$/;
const GITHUB_TEAM = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\/[A-Za-z0-9._-]+$/;

const repositoryRule = object(
  {
    match: stringOrList(glob('an owner/repo glob')),
    requiredApplyRequirements: applyRequirements,
    allowedPolicyKeys: list(oneOf(POLICY_KEYS)),
    allowHooks: boolean(),
    allowEnv: boolean(),
    envAllowlist: list(string((s) => (ENV_GLOB.test(s) ? s : invalid(`must be a glob of environment variable names, got ${quote(s)}`)))),
    allowedBaseBranches: list(glob('a branch glob')),
    allowForks: boolean(),
    maxParallelism: integer(1),
    policies: policyChecks,
    policyOwners: object({
      users: list(string((s) => (GITHUB_LOGIN.test(s) ? s : invalid(`must be a GitHub login, got ${quote(s)}`)))),
      teams: list(string((s) => (GITHUB_TEAM.test(s) ? s : invalid(`must be a team as "org/team", got ${quote(s)}`)))),
    }),
    allowRepoPolicies: boolean(),
  },
  { required: ['match'] },
);

const runnerPath = object(
  {
    path: string((s) => (isAbsolute(s) && !s.includes('\0') ? s : invalid(`must be an absolute path, got ${quote(s)}`))),
    writable: boolean(),
  },
  { required: ['path'] },
);

const serverPolicySchema = object({
  repositories: list(repositoryRule),
  runner: object({ sandbox: oneOf(['auto', 'bubblewrap', 'none']), paths: list(runnerPath), network: oneOf(['private', 'host']) }),
});

export interface ServerPolicyResult {
  policy?: OperatorPolicy;
  /** One line each: `file:line:col: path: message`. */
  errors: string[];
}

/** Parses and checks the policy file's text; a policy only when it has no errors. */
export function parseServerPolicy(text: string, file: string): ServerPolicyResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      errors: doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return formatConfigError({ file, line, column: col, path: '', message: `invalid YAML: ${e.message}` });
      }),
    };
  }
  const ctx: CheckContext = { file, doc, lines, errors: [] as ConfigError[], nodes: new Map() };
  const written = doc.contents === null ? {} : serverPolicySchema(doc.contents as Node, [], ctx);
  if (!written || ctx.errors.length > 0) {
    return { errors: ctx.errors.toSorted((a, b) => a.line - b.line || a.column - b.column).map(formatConfigError) };
  }
  const repositories = (written.repositories ?? []).map(
    ({ policies, policyOwners, ...r }) =>
      ({
        ...r,
        match: r.match ?? [],
        ...(policies ? { policies: policies.map((c) => ({ name: c.name!, run: c.run!, projects: c.projects ?? ['*'] })) } : {}),
        ...(policyOwners ? { policyOwners: { users: policyOwners.users ?? [], teams: policyOwners.teams ?? [] } } : {}),
      }) as RepositoryRule,
  );
  return {
    policy: {
      repositories,
      runner: {
        sandbox: written.runner?.sandbox ?? DEFAULT_OPERATOR_POLICY.runner.sandbox,
        paths: (written.runner?.paths ?? []).map((p) => ({ path: p.path!, writable: p.writable ?? false })),
        ...(written.runner?.network ? { network: written.runner.network } : {}),
      },
    },
    errors: [],
  };
}

/** Reads the file at `path`; errors (unreadable file included) come back as lines, never thrown. */
export function loadServerPolicy(path: string): ServerPolicyResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { errors: [`${path}: cannot read the file (${code ?? (err as Error).message})`] };
  }
  return parseServerPolicy(text, path);
}
