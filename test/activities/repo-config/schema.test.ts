// The published JSON Schemas: what Terrapin checks files against, what editors read, and what the docs say.
import { globSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { POLICY_KEYS } from '../../../activities/operator-policy.ts';
import { formatConfigError, parseRepoConfigFile } from '../../../activities/repo-config/index.ts';
import { REPO_SCHEMA, repoConfigValidator, SERVER_SCHEMA, serverConfigValidator } from '../../../activities/repo-config/schema.ts';
import { parseServerPolicy } from '../../../app/server-policy.ts';

interface Schema {
  $id?: string;
  $ref?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema | { enum: string[] };
  $defs?: Record<string, Schema>;
  not?: object;
}

const repo = REPO_SCHEMA as Schema;
const server = SERVER_SCHEMA as Schema;
const docs = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');
const section = (text: string, from: string, to: string) => text.slice(text.indexOf(from), text.indexOf(to, text.indexOf(from)));
/** First-column keys of the markdown tables in `text`: "| `key` (required) | …" → key. */
const tableKeys = (text: string) => [...text.matchAll(/^\| `([A-Za-z]+)`[^|]*\|/gm)].map((m) => m[1]);
const headingKeys = (text: string) => [...text.matchAll(/^### `([A-Za-z]+)`/gm)].map((m) => m[1]);
const yamlBlocks = (text: string) => [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
const RAW_AJV = /must NOT|must match|must have|must be equal|must pass|property name|must be (?:string|integer|object|array|boolean)\b/;

/** Every named property anywhere in the schema (properties of properties, items, $defs), with its path. */
function properties(schema: Schema, path = ''): { path: string; name: string; schema: Schema }[] {
  const out: { path: string; name: string; schema: Schema }[] = [];
  for (const [name, sub] of Object.entries(schema.properties ?? {})) out.push({ path: `${path}${name}`, name, schema: sub }, ...properties(sub, `${path}${name}.`));
  if (schema.items && 'properties' in schema.items) out.push(...properties(schema.items as Schema, path));
  for (const [name, sub] of Object.entries(schema.$defs ?? {})) out.push(...properties(sub, `$defs.${name}.`));
  for (const alt of [...((schema as { oneOf?: Schema[] }).oneOf ?? []), ...((schema as { allOf?: Schema[] }).allOf ?? [])]) out.push(...properties(alt, path));
  return out;
}

describe('the schemas editors read', () => {
  test.each([
    ['terrapin.schema.json', repo],
    ['server-config.schema.json', server],
  ])('%s has an $id at its published place, a title, and a description on every key', (file, schema) => {
    expect(schema.$id).toMatch(new RegExp(`/schemas/${file.replace('.', '\\.')}$`));
    expect((schema as { title?: string }).title).toBeTruthy();
    const resolve = (s: Schema) => (s.$ref?.startsWith('#/$defs/') ? { ...schema.$defs![s.$ref.slice(8)], ...s } : s);
    const missing = properties(schema).filter((p) => !resolve(p.schema).description && !resolve(p.schema).$ref?.includes('.json'));
    expect(missing.map((p) => p.path)).toEqual([]);
  });

  test('oneOf and anyOf branches are written inline, as schema-errors.ts tells branches apart by identity', () => {
    const refBranches: string[] = [];
    const visit = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node)) {
        if ((key === 'oneOf' || key === 'anyOf') && Array.isArray(value)) value.forEach((b, i) => '$ref' in b && refBranches.push(`${path}/${key}/${i}`));
        visit(value, `${path}/${key}`);
      }
    };
    visit(repo, 'terrapin');
    visit(server, 'server-config');
    expect(refBranches).toEqual([]);
  });

  test('validators are compiled once per process', () => {
    expect(repoConfigValidator()).toBe(repoConfigValidator());
    expect(serverConfigValidator()).toBe(serverConfigValidator());
  });

  test('allowedPolicyKeys lists exactly the policy keys, in their order', () => {
    const rule = server.$defs!.repositoryRule.properties!;
    expect((rule.allowedPolicyKeys.items as { enum: string[] }).enum).toEqual([...POLICY_KEYS]);
  });
});

describe('docs/config.md and the schema are in step', () => {
  const text = docs('config.md');

  test('top-level keys: the table lists every key of the schema and no other', () => {
    expect(tableKeys(section(text, '## Top level', '### `permissions`')).sort()).toEqual(Object.keys(repo.properties!).sort());
  });

  test('project keys: a heading for every key of the schema and no other', () => {
    expect(headingKeys(section(text, '## Project keys', '## Without a config')).sort()).toEqual(Object.keys(repo.$defs!.project.properties!).sort());
  });

  test('defaults takes every project key except name and dir', () => {
    const defaults = Object.entries(repo.properties!.defaults.properties!).filter(([, s]) => s.not === undefined).map(([k]) => k);
    expect(defaults.sort()).toEqual(Object.keys(repo.$defs!.project.properties!).filter((k) => k !== 'name' && k !== 'dir').sort());
  });

  test('every key at any depth is named in the docs', () => {
    const named = new Set([...text.matchAll(/`([A-Za-z]+)`|\b([A-Za-z]+):/g)].map((m) => m[1] ?? m[2]));
    expect(properties(repo).filter((p) => !named.has(p.name)).map((p) => p.path)).toEqual([]);
  });

  test('the editor setup points at the published schema', () => {
    expect(text).toContain(`# yaml-language-server: $schema=${repo.$id}`);
    expect(text).toContain('"yaml.schemas"');
  });
});

describe('docs/server-config.md and the schema are in step', () => {
  const text = docs('server-config.md');

  test('repositories: the table lists every key of a rule and no other', () => {
    expect(tableKeys(section(text, '## `repositories`', '### Defaults')).sort()).toEqual(Object.keys(server.$defs!.repositoryRule.properties!).sort());
  });

  test('runner: the table lists every key and no other', () => {
    expect(tableKeys(section(text, '## `runner`', '## Errors')).sort()).toEqual(Object.keys(server.properties!.runner.properties!).sort());
  });

  test('its examples are valid policy files', () => {
    const [example, defaults] = yamlBlocks(text);
    expect(parseServerPolicy(example, 'example.yml').errors).toEqual([]);
    const asRule = `repositories:\n  - match: "*/*"\n${defaults.trimEnd().split('\n').map((l) => `    ${l}`).join('\n')}\n`;
    expect(parseServerPolicy(asRule, 'defaults.yml').errors).toEqual([]);
  });

  test('the editor setup points at the published schema', () => {
    expect(text).toContain(`# yaml-language-server: $schema=${server.$id}`);
  });
});

describe('the configs the repository ships are valid', () => {
  const root = new URL('../../../', import.meta.url);
  const files = globSync(['examples/**/.terrapin.yml', 'test/scenarios/*/repo/.terrapin.yml'], { cwd: root });

  test.each(files)('%s', (file) => {
    expect(parseRepoConfigFile(readFileSync(new URL(file, root), 'utf8'), { cpuCount: 1, file }).errors.map(formatConfigError)).toEqual([]);
  });

  test('there are some, and the README example is one', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
    const readme = yamlBlocks(readFileSync(new URL('README.md', root), 'utf8'));
    expect(readme.length).toBeGreaterThanOrEqual(1);
    for (const block of readme) expect(parseRepoConfigFile(block, { cpuCount: 1 }).errors.map(formatConfigError)).toEqual([]);
  });
});

describe('messages are the project’s own, one per problem', () => {
  const projectKeys = Object.keys(repo.$defs!.project.properties!);

  test.each(projectKeys)('a number where project key %s goes', (key) => {
    const rest = { name: 'name: a', dir: 'dir: a' } as Record<string, string>;
    const lines = Object.entries(rest).filter(([k]) => k !== key).map(([, l]) => l);
    const { errors } = parseRepoConfigFile(`projects:\n  - ${[...lines, `${key}: 12345`].join('\n    ')}\n`, { cpuCount: 1 });
    expect(errors.map(formatConfigError)).toHaveLength(1);
    expect(errors[0].path).toBe(`projects[0].${key}`);
    expect(errors[0].message).not.toMatch(RAW_AJV);
    expect(errors[0].message).toMatch(/^(must|unknown)/);
  });

  test.each(Object.keys(repo.properties!))('a list of mappings where top-level key %s goes', (key) => {
    const { errors } = parseRepoConfigFile(`${key}:\n  - { zz: 1 }\n`, { cpuCount: 1 });
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const e of errors) {
      expect(e.path.startsWith(key)).toBe(true);
      expect(e.message).not.toMatch(RAW_AJV);
    }
  });

  test('each server-config key with a wrong value: one error in our words', () => {
    for (const key of Object.keys(server.$defs!.repositoryRule.properties!).filter((k) => k !== 'match')) {
      const { errors } = parseServerPolicy(`repositories:\n  - match: a/b\n    ${key}: { zz: 1 }\n`, 'policy.yml');
      expect(errors, key).toHaveLength(1);
      expect(errors[0], key).toMatch(new RegExp(`^policy\\.yml:3:\\d+: repositories\\[0\\]\\.${key}(\\.zz)?: (must|unknown)`));
      expect(errors[0], key).not.toMatch(RAW_AJV);
    }
  });
});
