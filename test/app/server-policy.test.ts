// The operator's policy file (TERRAPIN_SERVER_CONFIG): parsing with exact file:line:col errors, the rules
// a repository ends up with, and a start that refuses an invalid file.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../app/config.ts';
import { loadServerPolicy, parseServerPolicy } from '../../app/server-policy.ts';
import { baseBranchAllowed, DEFAULT_OPERATOR_POLICY, effectiveRules, POLICY_KEYS, type OperatorPolicy } from '../../activities/operator-policy.ts';

const dir = mkdtempSync(join(tmpdir(), 'terrapin-server-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILE = '/etc/terrapin/policy.yml';
const APPROVED = { kind: 'approved', count: 1, users: [], teams: [] };

describe('parseServerPolicy: policy checks', () => {
  test('checks, owners and allowRepoPolicies are read and normalised; bad ones reported with their position', () => {
    const text = [
      'repositories:',
      '  - match: "acme/*"',
      '    policies:',
      '      - { name: checkov, run: "checkov -f $PLAN_JSON --framework terraform_plan" }',
      '      - { name: no-destroy, run: /opt/policies/no-destroy.sh, projects: ["prod-*"] }',
      '    policyOwners: { users: [carol], teams: [acme/security] }',
      '    allowRepoPolicies: true',
      '',
    ].join('\n');
    const rule = parseServerPolicy(text, FILE).policy!.repositories[0]!;
    expect(rule).toMatchObject({
      policies: [
        { name: 'checkov', run: 'checkov -f $PLAN_JSON --framework terraform_plan', projects: ['*'] },
        { name: 'no-destroy', run: '/opt/policies/no-destroy.sh', projects: ['prod-*'] },
      ],
      policyOwners: { users: ['carol'], teams: ['acme/security'] },
      allowRepoPolicies: true,
    });
    const bad = parseServerPolicy(['repositories:', '  - match: x/y', '    policies: [{ name: "bad name", run: "" }]', '    policyOwners: { teams: [security] }', ''].join('\n'), FILE);
    expect(bad.policy).toBeUndefined();
    expect(bad.errors.join('\n')).toMatch(/policies\[0\]\.name: must be a project name/);
    expect(bad.errors.join('\n')).toMatch(/policies\[0\]\.run: must be a shell command/);
    expect(bad.errors.join('\n')).toMatch(/policyOwners\.teams\[0\]: must be a team as "org\/team"/);
  });
});

describe('parseServerPolicy', () => {
  test('a full file: every key, normalised', () => {
    const text = [
      'repositories:',
      '  - match: "acme/*"',
      '    requiredApplyRequirements: [approved, { approved: { count: 2, teams: [acme/sre] } }]',
      '    allowedPolicyKeys: [applyRequirements, when, permissions]',
      '    allowHooks: false',
      '    allowEnv: true',
      '    envAllowlist: ["AWS_*", TF_VAR_*]',
      '    allowedBaseBranches: [main, "release/*"]',
      '    allowForks: true',
      '    maxParallelism: 2',
      '  - match: [acme/sandbox, "acme/play-*"]',
      '    allowHooks: true',
      'runner:',
      '  sandbox: bubblewrap',
      '  paths:',
      '    - { path: /var/lib/terraform-state, writable: true }',
      '    - path: /etc/ssl/certs',
      '  network: host',
      '',
    ].join('\n');
    expect(parseServerPolicy(text, FILE)).toEqual({
      errors: [],
      policy: {
        repositories: [
          {
            match: ['acme/*'],
            requiredApplyRequirements: [APPROVED, { kind: 'approved', count: 2, users: [], teams: ['acme/sre'] }],
            allowedPolicyKeys: ['applyRequirements', 'when', 'permissions'],
            allowHooks: false,
            allowEnv: true,
            envAllowlist: ['AWS_*', 'TF_VAR_*'],
            allowedBaseBranches: ['main', 'release/*'],
            allowForks: true,
            maxParallelism: 2,
          },
          { match: ['acme/sandbox', 'acme/play-*'], allowHooks: true },
        ],
        runner: {
          sandbox: 'bubblewrap',
          paths: [
            { path: '/var/lib/terraform-state', writable: true },
            { path: '/etc/ssl/certs', writable: false },
          ],
          network: 'host',
        },
      },
    });
  });

  test('an empty file is the default policy', () => {
    expect(parseServerPolicy('', FILE)).toEqual({ errors: [], policy: DEFAULT_OPERATOR_POLICY });
    expect(parseServerPolicy('# nothing yet\n', FILE).policy).toEqual(DEFAULT_OPERATOR_POLICY);
  });

  test('every problem, with file:line:col, sorted by position', () => {
    const text = [
      'repositories:',
      '  - match: acme/*',
      '    allowHooks: nope',
      '    allowedPolicyKeys: [hooks, hookz]',
      '    requiredApplyRequirements: [approvd]',
      '    envAllowlist: ["AWS REGION"]',
      '    maxParallelism: 0',
      '  - allowForks: true',
      '  - match: acme/x',
      '    allowFork: true',
      'runner:',
      '  sandbox: docker',
      '  paths:',
      '    - path: relative/dir',
      '      writable: yes',
      'extra: 1',
      '',
    ].join('\n');
    expect(parseServerPolicy(text, FILE).errors).toEqual([
      `${FILE}:3:17: repositories[0].allowHooks: must be true or false, got "nope"`,
      `${FILE}:4:32: repositories[0].allowedPolicyKeys[1]: must be one of ${POLICY_KEYS.map((k) => `"${k}"`).join(', ')}, got "hookz"; did you mean "hooks"?`,
      `${FILE}:5:33: repositories[0].requiredApplyRequirements[0]: must be one of "approved", "mergeable", "undiverged", got "approvd"; did you mean "approved"?`,
      `${FILE}:6:20: repositories[0].envAllowlist[0]: must be a glob of environment variable names, got "AWS REGION"`,
      `${FILE}:7:21: repositories[0].maxParallelism: must be a positive integer, got 0`,
      `${FILE}:8:5: repositories[1]: missing required key \`match\``,
      `${FILE}:10:5: repositories[2].allowFork: unknown key; did you mean \`allowForks\`?`,
      `${FILE}:12:12: runner.sandbox: must be one of "auto", "bubblewrap", "none", got "docker"`,
      `${FILE}:14:13: runner.paths[0].path: must be an absolute path, got "relative/dir"`,
      `${FILE}:15:17: runner.paths[0].writable: must be true or false, got "yes"`,
      `${FILE}:16:1: extra: unknown key; expected one of \`repositories\`, \`runner\``,
    ]);
  });

  test('broken YAML is reported at its position, and quoted values are short single-line excerpts', () => {
    expect(parseServerPolicy('repositories: [\n', FILE).errors).toEqual([expect.stringMatching(new RegExp(`^${FILE}:2:1: invalid YAML: `))]);
    const long = 'x'.repeat(200);
    const [error] = parseServerPolicy(`runner:\n  sandbox: "${long}"\n`, FILE).errors;
    expect(error).toBe(`${FILE}:2:12: runner.sandbox: must be one of "auto", "bubblewrap", "none", got "${'x'.repeat(40)}…"`);
  });

  test('an unreadable file is one clear line', () => {
    expect(loadServerPolicy(join(dir, 'missing.yml')).errors).toEqual([`${join(dir, 'missing.yml')}: cannot read the file (ENOENT)`]);
  });
});

describe('loadConfig with TERRAPIN_SERVER_CONFIG', () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const env = (extra: Record<string, string>) => ({ APP_ID: '1', WEBHOOK_SECRET: 's', PRIVATE_KEY: privateKey, ...extra });

  test('unset: the default policy; set: the file', () => {
    expect(loadConfig(env({})).operatorPolicy).toEqual(DEFAULT_OPERATOR_POLICY);
    const file = join(dir, 'ok.yml');
    writeFileSync(file, 'repositories:\n  - match: acme/infra\n    allowHooks: false\n');
    expect(loadConfig(env({ TERRAPIN_SERVER_CONFIG: file })).operatorPolicy.repositories).toEqual([{ match: ['acme/infra'], allowHooks: false }]);
  });

  test('invalid: a ConfigError listing every problem', () => {
    const file = join(dir, 'bad.yml');
    writeFileSync(file, 'repositories:\n  - match: acme/*\n    allowHooks: maybe\nrunner:\n  sandbox: docker\n');
    let thrown: unknown;
    try {
      loadConfig(env({ TERRAPIN_SERVER_CONFIG: file }));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toBe(
      [
        'TERRAPIN_SERVER_CONFIG is invalid (2 problems):',
        `  ${file}:3:17: repositories[0].allowHooks: must be true or false, got "maybe"`,
        `  ${file}:5:12: runner.sandbox: must be one of "auto", "bubblewrap", "none", got "docker"`,
      ].join('\n'),
    );
  });

  test('the service refuses to start: the problems on stderr, exit 1', () => {
    const file = join(dir, 'start.yml');
    writeFileSync(file, 'repositories:\n  - allowForks: true\n');
    const { TEMPORAL_ADDRESS: _ignored, ...inherited } = process.env;
    const main = fileURLToPath(new URL('../../app/main.ts', import.meta.url));
    const run = spawnSync(process.execPath, [main], {
      env: { ...inherited, ...env({ TERRAPIN_SERVER_CONFIG: file, TERRAPIN_DATA_DIR: join(dir, 'data') }) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`terrapin: TERRAPIN_SERVER_CONFIG is invalid (1 problem):\n  ${file}:2:5: repositories[0]: missing required key \`match\`\n`);
  });
});

describe('effectiveRules', () => {
  const policy = (repositories: OperatorPolicy['repositories']): OperatorPolicy => ({ ...DEFAULT_OPERATOR_POLICY, repositories });

  test('no rule: one approval required, every key allowed, hooks and env on, no forks, the default branch only', () => {
    const rules = effectiveRules(DEFAULT_OPERATOR_POLICY, 'acme/infra');
    expect(rules).toEqual({
      requiredApplyRequirements: [APPROVED],
      allowedPolicyKeys: [...POLICY_KEYS],
      allowHooks: true,
      allowEnv: true,
      envAllowlist: [],
      allowedBaseBranches: [],
      allowForks: false,
      policies: [],
      policyOwners: { users: [], teams: [] },
      allowRepoPolicies: false,
      decidedBy: {},
    });
  });

  test('later matching rules override key by key; other repositories are untouched; names match case-insensitively', () => {
    const p = policy([
      { match: ['acme/*'], allowHooks: false, maxParallelism: 4, allowedBaseBranches: ['main'] },
      { match: ['acme/sandbox'], allowHooks: true, allowForks: true },
      { match: ['other/*'], allowEnv: false },
    ]);
    expect(effectiveRules(p, 'Acme/Sandbox')).toMatchObject({
      allowHooks: true,
      allowForks: true,
      maxParallelism: 4,
      allowedBaseBranches: ['main'],
      allowEnv: true,
      decidedBy: { allowHooks: '"acme/sandbox"', allowForks: '"acme/sandbox"', maxParallelism: '"acme/*"', allowedBaseBranches: '"acme/*"' },
    });
    expect(effectiveRules(p, 'acme/infra')).toMatchObject({ allowHooks: false, allowForks: false, maxParallelism: 4 });
    expect(effectiveRules(p, 'else/infra')).toEqual(effectiveRules(DEFAULT_OPERATOR_POLICY, 'else/infra'));
  });

  test('a rule can require more than one approval, or nothing at all (explicitly)', () => {
    const two = { kind: 'approved' as const, count: 2, users: [], teams: [] };
    expect(effectiveRules(policy([{ match: ['*/*'], requiredApplyRequirements: [two] }]), 'a/b').requiredApplyRequirements).toEqual([two]);
    expect(effectiveRules(policy([{ match: ['*/*'], requiredApplyRequirements: [] }]), 'a/b').requiredApplyRequirements).toEqual([]);
  });

  test('allowed base branches: the default branch when none are named, else the globs', () => {
    const none = effectiveRules(DEFAULT_OPERATOR_POLICY, 'a/b');
    expect(baseBranchAllowed(none, 'main', 'main')).toBe(true);
    expect(baseBranchAllowed(none, 'loose', 'main')).toBe(false);
    expect(baseBranchAllowed(none, 'main', undefined)).toBe(false);
    const globs = effectiveRules(policy([{ match: ['a/b'], allowedBaseBranches: ['main', 'release/*'] }]), 'a/b');
    expect(baseBranchAllowed(globs, 'release/1.2', 'main')).toBe(true);
    expect(baseBranchAllowed(globs, 'release/1.2/x', 'main')).toBe(false);
    expect(baseBranchAllowed(globs, 'develop', 'develop')).toBe(false);
  });
});
