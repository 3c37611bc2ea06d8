// The change summary above the plan: grouping from `terraform show -json` (pure), and the words the
// comment shows for real terraform plans of every kind of change (golden files).
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLAPSE_OVER, MAX_NAME_CHARS, summarizeChanges, type ChangeSummary } from '../../activities/change-summary.ts';
import { formatPlanAsDiff } from '../../activities/plan-format.ts';
import { readChangeSummary, render, splitComment } from '../../activities/render.ts';
import { expectGolden } from '../helpers/golden.ts';
import { syntheticPlan } from '../helpers/synthetic-plan.ts';
import { expectBalanced } from '../helpers/markdown.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/change-summary/', import.meta.url));

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-change-summary-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const rc = (address: string, actions: string[], extra: Record<string, unknown> = {}, change: Record<string, unknown> = {}) => ({
  address,
  ...extra,
  change: { actions, ...change },
});

/** Which addresses each group lists. */
const listed = (s: ChangeSummary) => Object.fromEntries(s.groups.map((g) => [g.kind, g.entries.map((e) => e.address)]));

describe('summarizeChanges', () => {
  it('groups resources by action, in a fixed order, and leaves out reads and no-ops', () => {
    const s = summarizeChanges({
      resource_changes: [
        rc('d.gone', ['delete']),
        rc('c.new', ['create']),
        rc('r.a', ['delete', 'create']),
        rc('r.b', ['create', 'delete']),
        rc('u.x', ['update']),
        rc('data.read', ['read']),
        rc('n.same', ['no-op']),
        rc('f.old', ['forget']),
      ],
    });
    expect(s.groups.map((g) => g.kind)).toEqual(['create', 'update', 'replace', 'destroy', 'forget']);
    expect(listed(s)).toEqual({ create: ['c.new'], update: ['u.x'], replace: ['r.a', 'r.b'], destroy: ['d.gone'], forget: ['f.old'] });
    expect(s.groups.filter((g) => g.warn).map((g) => g.kind)).toEqual(['replace', 'destroy']);
    expect(s.groups.find((g) => g.kind === 'replace')!.count).toBe(2);
    expect(s.hasChanges).toBe(true);
  });

  it('lists an import or a move besides the action that comes with it, as terraform counts them', () => {
    const s = summarizeChanges({
      resource_changes: [
        rc('i.only', ['no-op'], {}, { importing: { id: 'id-1' } }),
        rc('i.changed', ['update'], {}, { importing: { id: 'id-2' } }),
        rc('m.only', ['no-op'], { previous_address: 'm.before' }),
        rc('m.changed', ['update'], { previous_address: 'm.earlier' }),
        rc('m.same', ['no-op'], { previous_address: 'm.same' }),
      ],
    });
    expect(listed(s)).toEqual({ update: ['i.changed', 'm.changed'], import: ['i.only', 'i.changed'], move: ['m.only', 'm.changed'] });
    const importGroup = s.groups.find((g) => g.kind === 'import')!;
    expect(importGroup.entries.map((e) => e.importId)).toEqual(['id-1', 'id-2']);
    expect(s.groups.find((g) => g.kind === 'move')!.entries.map((e) => e.from)).toEqual(['m.before', 'm.earlier']);
    // Entries of other groups carry no move or import detail.
    expect(s.groups.find((g) => g.kind === 'update')!.entries).toEqual([{ address: 'i.changed' }, { address: 'm.changed' }]);
  });

  it('keeps the reason of a replacement or destruction and names a deposed object', () => {
    const s = summarizeChanges({
      resource_changes: [
        rc('r.t', ['delete', 'create'], { action_reason: 'replace_because_tainted' }),
        rc('d.x', ['delete'], { deposed: '00000001', action_reason: 'delete_because_no_resource_config' }),
        rc('c.y', ['create'], { action_reason: 'read_because_config_unknown' }),
      ],
    });
    expect(s.groups.find((g) => g.kind === 'replace')!.entries).toEqual([{ address: 'r.t', reason: 'replace_because_tainted' }]);
    expect(s.groups.find((g) => g.kind === 'destroy')!.entries).toEqual([{ address: 'd.x', deposed: '00000001', reason: 'delete_because_no_resource_config' }]);
    expect(s.groups.find((g) => g.kind === 'create')!.entries).toEqual([{ address: 'c.y' }]);
  });

  it('puts a create-then-forget in both groups', () => {
    expect(listed(summarizeChanges({ resource_changes: [rc('a.b', ['create', 'forget'])] }))).toEqual({ create: ['a.b'], forget: ['a.b'] });
  });

  it(`cuts addresses and ids a PR chose to ${MAX_NAME_CHARS} characters`, () => {
    const key = '`'.repeat(5_000) + 'x';
    const s = summarizeChanges({ resource_changes: [rc(`a.b["${key}"]`, ['no-op'], { previous_address: `a.c["${key}"]` }, { importing: { id: `😀${key}` } })] });
    const [move, imported] = [s.groups.find((g) => g.kind === 'move')!.entries[0]!, s.groups.find((g) => g.kind === 'import')!.entries[0]!];
    for (const text of [move.address, move.from!, imported.importId!]) {
      expect(text.length).toBe(MAX_NAME_CHARS);
      expect(text.endsWith('…')).toBe(true);
    }
    expect(summarizeChanges({ resource_changes: [rc('a.' + 'x'.repeat(MAX_NAME_CHARS - 2), ['create'])] }).groups[0]!.entries[0]!.address).toHaveLength(MAX_NAME_CHARS);
    // A cut never leaves half of a surrogate pair.
    const emoji = summarizeChanges({ resource_changes: [rc('x'.repeat(MAX_NAME_CHARS - 2) + '😀'.repeat(10), ['create'])] }).groups[0]!.entries[0]!.address;
    expect(emoji).toBe('x'.repeat(MAX_NAME_CHARS - 2) + '…');
  });

  it('keeps no value of a resource, sensitive or not', () => {
    const s = summarizeChanges({
      resource_changes: [rc('u.x', ['update'], {}, { before: { input: 'plain-before' }, after: { input: 'secret-after' }, after_sensitive: { input: true } })],
    });
    expect(JSON.stringify(s)).not.toMatch(/plain-before|secret-after/);
  });

  it('shows an output value only when neither side is marked sensitive and it is short', () => {
    const oc = (extra: Record<string, unknown>) => ({ actions: ['update'], before: 'old', after: 'new', after_unknown: false, before_sensitive: false, after_sensitive: false, ...extra });
    const s = summarizeChanges({
      output_changes: {
        plain: oc({}),
        secret_after: oc({ after_sensitive: true }),
        secret_before: oc({ before_sensitive: true }),
        nested: oc({ before: { a: 'x', b: 'hidden-b' }, after: { a: 'y', b: 'hidden-b' }, after_sensitive: { b: true } }),
        unmarked: { actions: ['update'], before: 'u-old', after: 'u-new' },
        long: oc({ after: 'x'.repeat(100) }),
        unknown: oc({ after: null, after_unknown: true }),
        created: { actions: ['create'], before: null, after: 42, after_unknown: false, before_sensitive: false, after_sensitive: false },
        deleted: { actions: ['delete'], before: 'bye', after: null, after_unknown: false, before_sensitive: false, after_sensitive: false },
        same: oc({ actions: ['no-op'] }),
      },
    });
    const byName = Object.fromEntries(s.outputs.map((o) => [o.name, o]));
    expect(Object.keys(byName)).toEqual(['plain', 'secret_after', 'secret_before', 'nested', 'unmarked', 'long', 'unknown', 'created', 'deleted']);
    expect(byName.plain).toEqual({ name: 'plain', action: 'update', sensitive: false, long: false, afterUnknown: false, before: '"old"', after: '"new"' });
    for (const name of ['secret_after', 'secret_before', 'nested', 'unmarked']) {
      expect(byName[name]).toMatchObject({ sensitive: true });
      expect(byName[name]).not.toHaveProperty('before');
      expect(byName[name]).not.toHaveProperty('after');
    }
    expect(byName.long).toEqual({ name: 'long', action: 'update', sensitive: false, long: true, afterUnknown: false });
    expect(byName.unknown).toEqual({ name: 'unknown', action: 'update', sensitive: false, long: false, afterUnknown: true, before: '"old"' });
    expect(byName.created).toEqual({ name: 'created', action: 'create', sensitive: false, long: false, afterUnknown: false, after: '42' });
    expect(byName.deleted).toEqual({ name: 'deleted', action: 'delete', sensitive: false, long: false, afterUnknown: false });
  });

  it(`collapses a group of more than ${COLLAPSE_OVER} entries`, () => {
    const creates = (n: number) => Array.from({ length: n }, (_, i) => rc(`c.r${i}`, ['create']));
    expect(summarizeChanges({ resource_changes: creates(COLLAPSE_OVER) }).groups[0]!.collapsed).toBe(false);
    expect(summarizeChanges({ resource_changes: creates(COLLAPSE_OVER + 1) }).groups[0]!.collapsed).toBe(true);
  });

  it('copes with an empty or odd document', () => {
    for (const doc of [null, {}, { resource_changes: 'x', output_changes: {} }, { resource_changes: [{}] }]) {
      expect(summarizeChanges(doc)).toEqual({ groups: [], outputs: [], outputsCollapsed: false, hasChanges: false });
    }
  });
});

const planData = (project: string) => ({
  sha: 'abc1234'.padEnd(40, '0'),
  shortSha: 'abc1234',
  project,
  workspace: 'default',
  summaryLine: 'Plan: (see the summary)',
  hasChanges: true,
});

/** Applies the case's before.tf, then plans its after.tf: the plan's JSON and text files, as plan() writes them. */
async function realPlan(name: string): Promise<{ jsonFile: string; textFile: string }> {
  const dir = await mkdtemp(join(tmp, `${name}-`));
  const terraform = (...args: string[]) => execa('terraform', [...args, '-no-color'], { cwd: dir, env: { TF_IN_AUTOMATION: '1' } });
  await copyFile(join(FIXTURES, name, 'before.tf'), join(dir, 'main.tf'));
  await terraform('init', '-input=false');
  await terraform('apply', '-input=false', '-auto-approve');
  await copyFile(join(FIXTURES, name, 'after.tf'), join(dir, 'main.tf'));
  await terraform('plan', '-input=false', '-out=plan.bin');
  const jsonFile = join(dir, 'plan.json');
  const textFile = join(dir, 'plan.diff.txt');
  await writeFile(jsonFile, (await terraform('show', '-json', 'plan.bin')).stdout);
  await writeFile(textFile, formatPlanAsDiff((await terraform('show', 'plan.bin')).stdout));
  return { jsonFile, textFile };
}

/**
 * The summary of the case's real plan as the comment shows it (the partial alone), compared with its
 * golden file; `expected` is how many entries each group has.
 */
async function summaryOf(name: string, expected: Record<string, number>): Promise<{ text: string; jsonFile: string }> {
  const files = await realPlan(name);
  const summary = (await readChangeSummary(files.jsonFile))!;
  const text = await render({ template: 'partials/change-summary', data: { ...summary } });
  expectGolden(`change-summary/${name}`, text);
  expect(Object.fromEntries(summary.groups.map((g) => [g.kind, g.count]))).toEqual(expected);
  return { text, jsonFile: files.jsonFile };
}

// Each case applies a first configuration and plans a second with real terraform (terraform_data only).
describe.concurrent('the summary of real terraform plans', () => {
  it('create: new resources, a for_each key with markup kept literal', async () => {
    const { text } = await summaryOf('create', { create: 4 });
    expect(text).toContain('- ``terraform_data.by_key["with `backticks` and <b>html</b>"]``');
    expect(text).toContain('- `terraform_data.by_key["</details><details><summary>spoof"]`');
    for (const limit of [80, 120, 200]) for (const part of splitComment(text, limit)) expectBalanced(part);
  });

  it('update in place; an unchanged resource is not listed', async () => {
    const { text } = await summaryOf('update', { update: 2 });
    expect(text).not.toContain('terraform_data.same');
  });

  it('replace: both orders and replace_triggered_by, each with ⚠️', async () => {
    const { text } = await summaryOf('replace', { update: 1, replace: 3 });
    expect(text).toContain('**⚠️ Replace (3)**');
    expect(text).toContain('- ⚠️ `terraform_data.blue_green`');
    expect(text).toContain('- ⚠️ `terraform_data.follower` · by `replace_triggered_by`');
  });

  it('destroy: removed from the configuration, count and for_each shrunk, each with ⚠️', async () => {
    const { text } = await summaryOf('destroy', { destroy: 4 });
    expect(text).toContain('- ⚠️ `terraform_data.database` · no longer in the configuration');
    expect(text).toContain('- ⚠️ `terraform_data.replica[2]` · its index is beyond `count`');
    expect(text).toContain('- ⚠️ `terraform_data.by_key["b"]` · its key is no longer in `for_each`');
  });

  it('import: terraform_data can be imported; an import with an update is listed under both', async () => {
    const { text } = await summaryOf('import', { update: 1, import: 2 });
    expect(text).toContain('- `terraform_data.adopted` · id `bucket-logs`');
  });

  it('move: moved blocks, one also updated', async () => {
    const { text } = await summaryOf('move', { update: 1, move: 2 });
    expect(text).toContain('- `terraform_data.old_name` → `terraform_data.new_name`');
  });

  it('forget: a removed block with destroy = false', async () => {
    const { text } = await summaryOf('forget', { forget: 1 });
    expect(text).not.toContain('⚠️');
  });

  it('outputs: short values shown, sensitive ones never, long ones not', async () => {
    const { text, jsonFile } = await summaryOf('outputs', { create: 1, update: 2 });
    // The JSON holds the secrets in clear: the point is that the summary does not.
    const json = await readFile(jsonFile, 'utf8');
    for (const secret of ['hunter2-before-CHANGE', 'hunter2-after-CHANGE', 'tok-SECRET-before', 'tok-SECRET-after']) {
      expect(json).toContain(secret);
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/hunter2|SECRET/);
    expect(text).toContain('- `region` · changed · `"eu-west-1"` → `"eu-central-1"`');
    expect(text).toContain('- `password` · changed · sensitive, not shown');
    expect(text).toContain('- `connection` · changed · sensitive, not shown');
    expect(text).toContain('- `endpoints` · changed · too long to show here');
    expect(text).toContain('- `cache_id` · added · known after apply');
    expect(text).toContain('- `retired` · removed');
  });

  it(`collapses a group of more than ${COLLAPSE_OVER}`, async () => {
    const { text } = await summaryOf('collapse', { create: 25 });
    expect(text).toContain('<details><summary>Create (25)</summary>');
    expect(text).toContain('<details><summary>Outputs (22)</summary>');
  });

  it('every kind at once: the whole plan comment, the summary above the collapsed plan', async () => {
    const { jsonFile, textFile } = await realPlan('everything');
    const out = await render({ template: 'plan', data: planData('infra'), files: { planText: textFile, changeSummary: jsonFile } });
    expectGolden('change-summary/everything-comment', out);
    const summaryPart = out.slice(0, out.indexOf('<details><summary>Show plan</summary>'));
    for (const heading of ['Create (1)', 'Update in place (2)', '⚠️ Replace (1)', '⚠️ Destroy (1)', 'Import (1)', 'Move (1)', 'Forget (1)', 'Outputs (4)']) {
      expect(summaryPart).toContain(`**${heading}**`);
    }
    // (terraform's own plan text shows the old value through terraform_data's `output`; the summary shows none.)
    expect(summaryPart).not.toContain('hunter2');
  });
});

describe('the summary of a very large plan', () => {
  it('renders 10,000 changes into parts GitHub takes, each with fences and <details> balanced, no secret in any', async () => {
    const plan = syntheticPlan(10_000);
    const jsonFile = join(tmp, 'big.json');
    const textFile = join(tmp, 'big.txt');
    await writeFile(jsonFile, JSON.stringify(plan.json));
    await writeFile(textFile, plan.text);
    const out = await render({ template: 'plan', data: planData('big'), files: { planText: textFile, changeSummary: jsonFile } });
    // activities/github.ts keeps 200 characters of each comment for its marker.
    const parts = splitComment(out, 65_536 - 200);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(65_536 - 200);
      expectBalanced(part);
    }
    expect(out).toContain('<details><summary>Create (2500)</summary>');
    expect(out).toContain('<details><summary>⚠️ Destroy (1250)</summary>');
    for (const secret of plan.secrets) expect(out).not.toContain(secret);
  });
});
