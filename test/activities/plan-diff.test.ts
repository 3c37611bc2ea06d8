import { testSandbox } from '../helpers/sandbox.ts';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanResult } from '../../shared/activity-contracts.ts';
import { describeActionChanges, describePlanChanges, diffPlans, samePlan, sameResourceActions, type PlanJson } from '../../activities/plan-diff.ts';
import { apply, plan } from '../../activities/terraform.ts';
import { terraformFixture, type FixtureResource } from '../helpers/fixture-repo.ts';

describe('diffPlans', () => {
  const labels = { previous: 'approved plan', current: 'new plan' };

  it('is empty for equal texts, and a final newline alone is no difference', () => {
    expect(diffPlans('a\nb\n', 'a\nb\n', labels)).toBe('');
    expect(diffPlans('a\nb', 'a\nb\n', labels)).toBe('');
    expect(diffPlans('', '', labels)).toBe('');
  });

  it('is a unified diff with the labels as file names and 3 lines of context', () => {
    const before = ['1', '2', '3', '4', '5', '6', '7', '8'].join('\n');
    const after = ['1', '2', '3', '4', 'five', '6', '7', '8'].join('\n');
    expect(diffPlans(before, after, labels)).toBe(
      ['--- approved plan', '+++ new plan', '@@ -2,7 +2,7 @@', ' 2', ' 3', ' 4', '-5', '+five', ' 6', ' 7', ' 8', ''].join('\n'),
    );
  });
});

describe('resource actions', () => {
  const plan1 = (changes: Record<string, string[]>): PlanJson => ({
    resource_changes: Object.entries(changes).map(([address, actions]) => ({ address, change: { actions } })),
  });

  it('names each difference in terraform words; unchanged and absent resources are the same', () => {
    const approved = plan1({ 'x.a': ['update'], 'x.b': ['delete'], 'x.c': ['no-op'], 'x.d': ['delete', 'create'] });
    const current = plan1({ 'x.a': ['delete', 'create'], 'x.d': ['create', 'delete'], 'x.e': ['create'] });
    expect(describeActionChanges(approved, current)).toEqual([
      'x.a: update → replace',
      'x.b: delete → no change',
      'x.d: replace → replace (create before destroy)',
      'x.e: no change → create',
    ]);
    expect(sameResourceActions(approved, current)).toBe(false);
    expect(sameResourceActions(plan1({ 'x.a': ['no-op'] }), {})).toBe(true);
  });

  it('tells an import apart', () => {
    const imported: PlanJson = { resource_changes: [{ address: 'x.a', change: { actions: ['no-op'], importing: { id: '1' } } }] };
    expect(describeActionChanges({}, imported)).toEqual(['x.a: no change → import, no change']);
  });
});

describe('with real terraform plans', () => {
  let root: string;
  let workDir: string;
  let stateFile: string;
  const deps = () => ({ dataDir: join(root, 'data'), sandbox: testSandbox([join(root, 'state')]) });
  const input = () => ({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform' as const });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'terrapin-plan-diff-'));
    workDir = join(root, 'work');
    stateFile = join(root, 'state', 'terraform.tfstate');
    const created = await planWith({ keep: { input: 'v1' }, gone: { input: 'x' }, swap: { input: 'a', triggersReplace: '1' } });
    const applied = await apply({ ...input(), planFile: created.result.planFile, expectedSha256: created.result.planSha256 }, deps());
    expect(applied.ok).toBe(true);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Plans `resources` and returns the plan's text and its `terraform show -json`. */
  async function planWith(resources: Record<string, FixtureResource>) {
    await execa('mkdir', ['-p', workDir]);
    await writeFile(join(workDir, 'main.tf'), terraformFixture({ stateFile, resources }));
    const result = ok(await plan(input(), deps()));
    const show = await execa('terraform', ['show', '-json', '-no-color', result.planFile], {
      cwd: workDir,
      env: { TF_DATA_DIR: join(dirname(result.planFile), 'tf-data') },
    });
    return { result, text: await readFile(result.planTextFile, 'utf8'), json: JSON.parse(show.stdout) as PlanJson };
  }

  function ok(result: PlanResult) {
    if (!result.ok) throw new Error(`plan failed, see ${result.outputFile}`);
    return result;
  }

  it('finds no difference between two plans of the same change', async () => {
    const change = { keep: { input: 'v2' }, swap: { input: 'a', triggersReplace: '2' } };
    const first = await planWith(change);
    const second = await planWith(change);
    expect(diffPlans(first.text, second.text, { previous: 'first', current: 'second' })).toBe('');
    expect(sameResourceActions(first.json, second.json)).toBe(true);
    expect(describeActionChanges(first.json, second.json)).toEqual([]);
  });

  it('names resources whose actions changed and shows the text difference', async () => {
    const approved = await planWith({ keep: { input: 'v2' }, swap: { input: 'a', triggersReplace: '2' } });
    const current = await planWith({ keep: { input: 'v3' }, gone: { input: 'x' }, swap: { input: 'a', triggersReplace: '2' }, extra: {} });
    expect(describeActionChanges(approved.json, current.json)).toEqual([
      'terraform_data.extra: no change → create',
      'terraform_data.gone: delete → no change',
    ]);
    expect(sameResourceActions(approved.json, current.json)).toBe(false);

    const diff = diffPlans(approved.text, current.text, { previous: 'approved plan', current: 'new plan' });
    expect(diff).toMatch(/^--- approved plan\n\+\+\+ new plan\n@@ /);
    expect(diff).toMatch(/^-- {3}resource "terraform_data" "gone" \{$/m);
    expect(diff).toMatch(/^\+\+ {3}resource "terraform_data" "extra" \{$/m);
    expect(diff).toMatch(/^-~ {7}input += "v1" -> "v2"$/m);
    expect(diff).toMatch(/^\+~ {7}input += "v1" -> "v3"$/m);
    expect(diff).toMatch(/^-Plan: 1 to add, 1 to change, 2 to destroy\.$/m);
    expect(diff).toMatch(/^\+Plan: 2 to add, 1 to change, 1 to destroy\.$/m);
  });

  it('sees the same actions when only values changed', async () => {
    const approved = await planWith({ keep: { input: 'v2' }, swap: { input: 'a', triggersReplace: '2' } });
    const current = await planWith({ keep: { input: 'v9' }, swap: { input: 'b', triggersReplace: '3' } });
    expect(sameResourceActions(approved.json, current.json)).toBe(true);
    expect(diffPlans(approved.text, current.text, { previous: 'a', current: 'b' })).toMatch(/^\+~ +input += "v1" -> "v9"$/m);
  });
});

describe('values, on real terraform plans', () => {
  let root: string;
  let workDir: string;
  let stateFile: string;
  const deps = () => ({ dataDir: join(root, 'data'), sandbox: testSandbox([join(root, 'state')]) });
  const input = () => ({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform' as const });
  const SECRET_V1 = 'hunter2-secret-value';

  /** `app` reads a sensitive variable, `later` an attribute known only after apply, `out` an output. */
  function config(values: { plain: string; secret: string; trigger: string; out: string }): string {
    return [
      `terraform {\n  backend "local" {\n    path = "${stateFile}"\n  }\n}`,
      `variable "secret" {\n  type      = string\n  sensitive = true\n  default   = "${values.secret}"\n}`,
      `resource "terraform_data" "app" {\n  input = { plain = "${values.plain}", secret = var.secret }\n}`,
      `resource "terraform_data" "trigger" {\n  input = "${values.trigger}"\n}`,
      `resource "terraform_data" "later" {\n  input = terraform_data.trigger.id\n  triggers_replace = "${values.trigger}"\n}`,
      `output "out" {\n  value = "${values.out}"\n}`,
    ].join('\n\n') + '\n';
  }

  async function planWith(values: Parameters<typeof config>[0]) {
    await execa('mkdir', ['-p', workDir]);
    await writeFile(join(workDir, 'main.tf'), config(values));
    const result = await plan(input(), deps());
    if (!result.ok) throw new Error(`plan failed, see ${result.outputFile}`);
    const text = await readFile(result.showJsonFile, 'utf8');
    return { result, text, json: JSON.parse(text) as PlanJson };
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'terrapin-plan-values-'));
    workDir = join(root, 'work');
    stateFile = join(root, 'state', 'terraform.tfstate');
    const first = await planWith({ plain: 'p1', secret: SECRET_V1, trigger: 't1', out: 'o1' });
    expect((await apply({ ...input(), planFile: first.result.planFile, expectedSha256: first.result.planSha256 }, deps())).ok).toBe(true);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('two plans of the same change are the same plan', async () => {
    const change = { plain: 'p2', secret: SECRET_V1, trigger: 't1', out: 'o1' };
    const [a, b] = [await planWith(change), await planWith(change)];
    expect(describePlanChanges(a.json, b.json)).toEqual([]);
    expect(samePlan(a.json, b.json)).toBe(true);
  });

  it('a value-only change is a different plan, though the actions are the same', async () => {
    const a = await planWith({ plain: 'p2', secret: SECRET_V1, trigger: 't1', out: 'o1' });
    const b = await planWith({ plain: 'p3', secret: SECRET_V1, trigger: 't1', out: 'o1' });
    expect(sameResourceActions(a.json, b.json)).toBe(true);
    expect(describePlanChanges(a.json, b.json)).toEqual(['terraform_data.app: values of input changed (sensitive)']);
    expect(samePlan(a.json, b.json)).toBe(false);
  });

  it('a changed sensitive value is named, never shown', async () => {
    const a = await planWith({ plain: 'p2', secret: SECRET_V1, trigger: 't1', out: 'o1' });
    const b = await planWith({ plain: 'p2', secret: 'other-secret-value', trigger: 't1', out: 'o1' });
    // The show -json holds the values: the comparison sees them...
    expect(b.text).toContain('other-secret-value');
    const changes = describePlanChanges(a.json, b.json);
    expect(changes).toEqual(['terraform_data.app: values of input changed (sensitive)']);
    // ...and says nothing of them.
    expect(changes.join('\n')).not.toMatch(/secret-value|hunter2/);
  });

  it('a changed trigger of a replacement and an output value count', async () => {
    const a = await planWith({ plain: 'p1', secret: SECRET_V1, trigger: 't2', out: 'o1' });
    const b = await planWith({ plain: 'p1', secret: SECRET_V1, trigger: 't3', out: 'o2' });
    expect(sameResourceActions(a.json, b.json)).toBe(true);
    expect(describePlanChanges(a.json, b.json)).toEqual([
      'terraform_data.later: values of triggers_replace changed',
      'terraform_data.trigger: values of input changed',
      'output out: no change → update',
    ]);
  });

  it('actions first, without repeating the values of a resource whose action changed', async () => {
    const a = await planWith({ plain: 'p1', secret: SECRET_V1, trigger: 't1', out: 'o1' });
    const b = await planWith({ plain: 'p1', secret: SECRET_V1, trigger: 't2', out: 'o1' });
    expect(describePlanChanges(a.json, b.json)).toEqual(['terraform_data.later: no change → replace', 'terraform_data.trigger: no change → update']);
  });
});
