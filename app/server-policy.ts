// Loads the operator's policy file (TERRAPIN_SERVER_CONFIG, docs/server-config.md) at start: YAML checked
// against schemas/server-config.schema.json, so every problem is reported with file:line:col and the
// service refuses to start until all are fixed.
import { readFileSync } from 'node:fs';
import { DEFAULT_OPERATOR_POLICY, type OperatorPolicy, type RepositoryRule, type RunnerSettings } from '../activities/operator-policy.ts';
import { formatConfigError } from '../activities/repo-config/errors.ts';
import { serverConfigValidator } from '../activities/repo-config/schema.ts';
import { validateYaml } from '../activities/repo-config/validate.ts';
import { policyChecks, writtenSettings, type FileData, type SettingsData } from '../activities/repo-config/written.ts';

/** The file as the schema lets it be written (match may be one glob, requirements shorthands). */
interface PolicyData {
  repositories?: (Omit<RepositoryRule, 'match' | 'requiredApplyRequirements' | 'policies' | 'policyOwners'> & {
    policyOwners?: { users?: string[]; teams?: string[] };
    match: string | string[];
    requiredApplyRequirements?: SettingsData['applyRequirements'];
    policies?: FileData['policies'];
  })[];
  runner?: Partial<Omit<RunnerSettings, 'paths'>> & { paths?: { path: string; writable?: boolean }[] };
}

export interface ServerPolicyResult {
  policy?: OperatorPolicy;
  /** One line each: `file:line:col: path: message`. */
  errors: string[];
}

/** Parses and checks the policy file's text; a policy only when it has no errors. */
export function parseServerPolicy(text: string, file: string): ServerPolicyResult {
  const validated = validateYaml(text, file, serverConfigValidator());
  if (validated.errors.length > 0) {
    return { errors: validated.errors.toSorted((a, b) => a.line - b.line || a.column - b.column).map(formatConfigError) };
  }
  const written = validated.data as PolicyData;
  const repositories = (written.repositories ?? []).map(({ match, requiredApplyRequirements, policies, policyOwners, ...rest }): RepositoryRule => ({
    match: [match].flat(),
    ...(requiredApplyRequirements ? { requiredApplyRequirements: writtenSettings({ applyRequirements: requiredApplyRequirements }).applyRequirements } : {}),
    ...rest,
    ...(policies ? { policies: policyChecks(policies) } : {}),
    ...(policyOwners ? { policyOwners: { users: policyOwners.users ?? [], teams: policyOwners.teams ?? [] } } : {}),
  }));
  return {
    policy: {
      repositories,
      runner: {
        sandbox: written.runner?.sandbox ?? DEFAULT_OPERATOR_POLICY.runner.sandbox,
        paths: (written.runner?.paths ?? []).map((p) => ({ path: p.path, writable: p.writable ?? false })),
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
