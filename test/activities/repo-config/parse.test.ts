// `.terrapin.yml`: valid files resolve to complete configs; invalid ones give every error with its position.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { formatConfigError, parseRepoConfigFile, type ApplyRequirement, type ProjectSettings, type RepoConfig } from '../../../activities/repo-config/index.ts';
import { DEFAULT_PERMISSIONS } from '../../../workflows/permissions.ts';

const fixtures = new URL('../../fixtures/repo-config/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, fixtures), 'utf8');
const parse = (text: string, cpuCount = 2) => parseRepoConfigFile(text, { cpuCount });

function parseValid(name: string, cpuCount = 2): RepoConfig {
  const { config, errors } = parse(read(`valid/${name}`), cpuCount);
  expect(errors.map(formatConfigError)).toEqual([]);
  return config!;
}

const approved = (count = 1, users: string[] = [], teams: string[] = []): ApplyRequirement => ({ kind: 'approved', count, users, teams });
const DEFAULTS: ProjectSettings = {
  workspace: 'default',
  terraform: 'terraform',
  autoplan: { enabled: true, whenModified: ['**/*.tf', '**/*.tfvars', '**/*.tofu', '.terraform.lock.hcl'] },
  dependsOn: [],
  inputs: {},
  applyRequirements: [approved()],
  onFailure: 'rollback',
  lock: 'onPlan',
  apply: 'beforeMerge',
  hooks: { prePlan: [], postPlan: [], preApply: [], postApply: [] },
  env: {},
  when: [],
};

describe('valid files', () => {
  test('minimal: every default filled in, parallelism from the CPU count', () => {
    expect(parseValid('minimal.yml', 6)).toEqual({
      version: 1,
      parallelism: 6,
      defaults: DEFAULTS,
      projects: [{ name: 'network', dir: 'infra/network', ...DEFAULTS }],
      projectsListed: true,
      allowForks: false,
      deployOnPush: false,
      permissions: DEFAULT_PERMISSIONS,
      replanConcurrency: 2,
      policies: [],
    });
  });

  test('full-featured: every key, normalised', () => {
    const config = parseValid('full-featured.yml');
    const defaults: ProjectSettings = {
      ...DEFAULTS,
      terraform: 'tofu',
      env: { TF_VAR_stage: '1' },
      hooks: { ...DEFAULTS.hooks, prePlan: ['tflint --chdir "$DIR"'] },
    };
    expect(config.parallelism).toBe(3);
    expect(config.defaults).toEqual(defaults);
    expect(config.projects).toEqual([
      {
        ...defaults,
        name: 'network',
        dir: 'infra/network',
        workspace: 'prod',
        autoplan: { enabled: true, whenModified: ['**/*.tf', '../modules/vpc/**/*.tf'] },
        applyRequirements: [approved(), { kind: 'mergeable' }, { kind: 'undiverged' }],
        drift: { schedule: '0 6 * * 1-5', reconcile: false },
      },
      {
        ...defaults,
        name: 'database',
        dir: 'infra/database',
        workspace: 'prod',
        terraform: 'terraform',
        dependsOn: ['network'],
        applyRequirements: [approved(2, ['alice', 'renovate[bot]'], ['acme/dba']), { kind: 'destroyNeeds', approvals: 3 }],
        onFailure: 'none',
        lock: 'onApply',
        apply: 'afterMerge',
      },
      {
        ...defaults,
        name: 'app',
        dir: 'infra/app',
        autoplan: { enabled: false, whenModified: DEFAULTS.autoplan.whenModified },
        dependsOn: ['network', 'database'],
        inputs: { vpc_id: { project: 'network', output: 'vpc_id' }, db_url: { project: 'database', output: 'url' } },
        hooks: {
          prePlan: ['tflint --chdir "$DIR"'],
          postPlan: ['echo "planned $PROJECT"', './scripts/cost.sh "$PLANFILE"'],
          preApply: ['./scripts/announce.sh'],
          postApply: [],
        },
        env: { TF_VAR_stage: '1', APP_ENV: 'production' },
        when: [
          { baseBranch: 'release/*', applyRequirements: [approved(2)] },
          { label: 'hotfix', onFailure: 'none' },
        ],
      },
    ]);
  });

  test('defaults merge: project values win, mappings merge one level deep, lists are replaced', () => {
    const [network, app, dns] = parseValid('defaults-merge.yml').projects;
    // network does not inherit its own name from defaults.dependsOn / defaults.inputs.
    expect(network).toMatchObject({ workspace: 'staging', dependsOn: [], inputs: {}, drift: { schedule: '0 3 * * *', reconcile: false } });
    expect(network.autoplan).toEqual({ enabled: true, whenModified: ['*.tf'] });

    expect(app.autoplan).toEqual({ enabled: false, whenModified: ['*.tf'] });
    expect(app.hooks).toEqual({ prePlan: ['./app-lint.sh', './other.sh'], postPlan: ['./cost.sh'], preApply: [], postApply: [] });
    expect(app.env).toEqual({ A: 'from-defaults', B: 'from-project' });
    expect(app.applyRequirements).toEqual([{ kind: 'undiverged' }]);
    expect(app.drift).toEqual({ schedule: '0 3 * * *', reconcile: true });
    expect(app.dependsOn).toEqual(['network']);
    expect(app.inputs).toEqual({ vpc_id: { project: 'network', output: 'vpc_id' } });

    // An empty list replaces the default; inputs merge, and each input adds its project to dependsOn.
    expect(dns.inputs).toEqual({ vpc_id: { project: 'network', output: 'vpc_id' }, zone: { project: 'app', output: 'zone' } });
    expect(dns.dependsOn).toEqual(['network', 'app']);
    expect(dns.applyRequirements).toEqual([approved(), { kind: 'mergeable' }]);
  });

  test('projects do not share the lists they inherit', () => {
    const [network, app] = parseValid('defaults-merge.yml').projects;
    network.hooks.postPlan.push('mutated');
    expect(app.hooks.postPlan).toEqual(['./cost.sh']);
  });

  test('when rules are kept as written, normalised', () => {
    const [prod] = parseValid('when-overrides.yml').projects;
    expect(prod.when).toEqual([
      { baseBranch: 'main', applyRequirements: [approved(2), { kind: 'mergeable' }] },
      { label: 'yolo', onFailure: 'none' },
      { baseBranch: 'release/**', label: 'Emergency', applyRequirements: [approved(1, [], ['acme/oncall'])] },
    ]);
  });

  test('legacy top-level onFailure becomes defaults.onFailure; no projects key means detect them', () => {
    const config = parseValid('legacy-on-failure.yml');
    expect(config.defaults.onFailure).toBe('none');
    expect(config.projects).toEqual([]);
    expect(config.projectsListed).toBe(false);
  });

  test('an empty file is all defaults', () => {
    expect({ ...parse('', 4), positions: undefined }).toEqual({ config: { version: 1, parallelism: 4, defaults: DEFAULTS, projects: [], projectsListed: false, allowForks: false, deployOnPush: false, permissions: DEFAULT_PERMISSIONS, replanConcurrency: 2, policies: [] }, errors: [] });
    expect(parse('# nothing yet\n', 1).config?.projectsListed).toBe(false);
  });

  test('the CPU count is only a default, and never below 1', () => {
    expect(parse('parallelism: 8\n', 2).config?.parallelism).toBe(8);
    expect(parse('projects: []\n', 0).config?.parallelism).toBe(1);
  });

  test('lock.ttl, replanOnBaseChange and policies resolve, with their defaults', () => {
    const text = 'lock: { ttl: 12h }\nreplanOnBaseChange: { concurrency: 4 }\npolicies:\n  - { name: buckets, run: ./check.sh }\n  - { name: tags, run: "true", projects: ["app-*"] }\n';
    expect(parse(text).config).toMatchObject({
      lockTtl: '12h',
      replanConcurrency: 4,
      policies: [
        { name: 'buckets', run: './check.sh', projects: ['*'] },
        { name: 'tags', run: 'true', projects: ['app-*'] },
      ],
    });
    const none = parse('projects: []\n').config!;
    expect([none.lockTtl, 'lockTtl' in none, none.replanConcurrency, none.policies]).toEqual([undefined, false, 2, []]);
    for (const ttl of ['30m', '7d', '120h']) expect(parse(`lock: { ttl: ${ttl} }\n`).config?.lockTtl, ttl).toBe(ttl);
  });

  test('YAML anchors and aliases work', () => {
    const text = 'projects:\n  - name: a\n    dir: a\n    env: &common { REGION: eu }\n  - name: b\n    dir: b\n    env: *common\n';
    expect(parse(text).config?.projects.map((p) => p.env)).toEqual([{ REGION: 'eu' }, { REGION: 'eu' }]);
  });

  test('aliases multiplying a small file into a huge one are refused, quickly', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g'].entries()) lines.push(`${name}: &${name} [${Array(10).fill(`*${'abcdef'[i]}`).join(', ')}]`);
    const { config, errors } = parse(lines.join('\n'));
    expect(config).toBeUndefined();
    expect(errors.map(formatConfigError)).toEqual(['.terrapin.yml:1:1: invalid YAML: more than 200000 values (aliases multiplying them?)']);
  });

  test('a key named __proto__ is a key, not a prototype', () => {
    const env = parse('projects:\n  - { name: a, dir: a, env: { __proto__: x, B: y } }\n').config!.projects[0].env;
    expect(Object.entries(env)).toEqual([['__proto__', 'x'], ['B', 'y']]);
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
  });

  test('cron schedules: ranges, steps, lists and names', () => {
    for (const schedule of ['*/15 * * * *', '0 6 * * 1-5', '0 0 1,15 * *', '30 2 * JAN-MAR sun', '0 0-23/2 * * 7']) {
      const { errors } = parse(`projects:\n  - { name: a, dir: a, drift: { schedule: "${schedule}" } }\n`);
      expect(errors, schedule).toEqual([]);
    }
  });
});

describe('invalid files', () => {
  const dir = new URL('invalid/', fixtures);
  const cases = readdirSync(dir).filter((f) => f.endsWith('.yml')).sort();

  test('there are at least 20, each paired with its expected errors', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
    const expectations = readdirSync(dir).filter((f) => f.endsWith('.expected.txt'));
    expect(expectations.sort()).toEqual(cases.map((c) => c.replace(/\.yml$/, '.expected.txt')));
  });

  test.each(cases)('%s', (name) => {
    const { config, errors } = parse(readFileSync(new URL(name, dir), 'utf8'));
    const expected = readFileSync(new URL(name.replace(/\.yml$/, '.expected.txt'), dir), 'utf8').trimEnd().split('\n');
    expect(errors.map(formatConfigError)).toEqual(expected);
    expect(config).toBeUndefined();
  });

  test('errors carry their parts separately, and the file name given', () => {
    const { errors } = parseRepoConfigFile('projects:\n  - { name: a, dir: /a }\n', { cpuCount: 1, file: 'infra/.terrapin.yml' });
    expect(errors).toEqual([
      { file: 'infra/.terrapin.yml', line: 2, column: 21, path: 'projects[0].dir', message: 'must be a path inside the repository, got "/a"' },
    ]);
    expect(formatConfigError(errors[0])).toBe('infra/.terrapin.yml:2:21: projects[0].dir: must be a path inside the repository, got "/a"');
  });
});

describe('docs/config.md', () => {
  const doc = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');
  const yamlBlocks = (text: string) => [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  const section = (from: string, to: string) => doc.slice(doc.indexOf(from), doc.indexOf(to));

  test('its complete example parses as documented', () => {
    const example = yamlBlocks(doc)[0];
    const { config, errors } = parse(example);
    expect(errors).toEqual([]);
    expect(config?.parallelism).toBe(4);
    expect(config?.projects.map((p) => [p.name, p.terraform, p.dependsOn])).toEqual([
      ['network', 'tofu', []],
      ['app', 'tofu', ['network']],
    ]);
  });

  test('every top-level example is a valid file', () => {
    const blocks = yamlBlocks(section('## Top level', '## Project keys'));
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) expect(parse(block).errors.map(formatConfigError), block).toEqual([]);
  });

  test('every project key example is valid in a project', () => {
    const blocks = yamlBlocks(section('## Project keys', '## Without a config'));
    expect(blocks.length).toBeGreaterThanOrEqual(15);
    for (const block of blocks) {
      const keys = (/^name:/m.test(block) ? '' : 'name: example\n') + (/^dir:/m.test(block) ? '' : 'dir: example\n') + block;
      const project = keys.trimEnd().split('\n').map((line, i) => (i === 0 ? `  - ${line}` : `    ${line}`)).join('\n');
      const file = `projects:\n${project}\n  - { name: network, dir: n }\n  - { name: database, dir: d }\n`;
      expect(parse(file).errors.map(formatConfigError), block).toEqual([]);
    }
  });
});

describe('allowForks', () => {
  test('is false unless the file says true', () => {
    expect(parse('', 1).config?.allowForks).toBe(false);
    expect(parse('allowForks: true\n', 1).config?.allowForks).toBe(true);
    expect(parse('allowForks: yes please\n', 1).errors.map((e) => e.path)).toEqual(['allowForks']);
  });
});


describe('lock.ttl', () => {
  test('minutes, hours or days; absent unless set', () => {
    expect(parse('', 1).config?.lockTtl).toBeUndefined();
    expect(parse('lock:\n  ttl: 12h\n', 1).config?.lockTtl).toBe('12h');
    expect(parse('lock: { ttl: 30m }\n', 1).config?.lockTtl).toBe('30m');
    expect(parse('lock: { ttl: 7d }\n', 1).config?.lockTtl).toBe('7d');
    for (const bad of ['12', '0h', '1s', '1.5h', '12 h', '"-1d"']) {
      expect(parse(`lock: { ttl: ${bad} }\n`, 1).errors.map((e) => `${e.path}: ${e.message}`), bad).toEqual([
        expect.stringMatching(/^lock\.ttl: must be (a duration such as "30m", "12h" or "7d"|a string), got /),
      ]);
    }
    // The top-level `lock` is a mapping; a project's `lock` stays a mode.
    expect(parse('lock: onApply\n', 1).errors.map((e) => e.path)).toEqual(['lock']);
    expect(parse('lock: { ttl: 1h, tl: 2h }\n', 1).errors.map((e) => e.path)).toEqual(['lock.tl']);
  });
});

describe('replanOnBaseChange', () => {
  test('sets how many open PRs a push to their base re-plans at once (default 2)', () => {
    expect(parse('replanOnBaseChange:\n  concurrency: 5\n').config?.replanConcurrency).toBe(5);
    expect(parse('replanOnBaseChange: {}\n').config?.replanConcurrency).toBe(2);
  });

  test('a concurrency below 1, or another key, is an error with its place', () => {
    expect(parse('replanOnBaseChange:\n  concurrency: 0\n').errors.map(formatConfigError)).toEqual([expect.stringMatching(/^\.terrapin\.yml:2:16: replanOnBaseChange\.concurrency: /)]);
    expect(parse('replanOnBaseChange:\n  parallel: 3\n').errors.map(formatConfigError)).toEqual([expect.stringMatching(/^\.terrapin\.yml:2:3: replanOnBaseChange\.parallel: unknown key/)]);
  });
});
