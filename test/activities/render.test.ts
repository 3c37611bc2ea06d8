import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, test } from 'vitest';
import { fenceCode, inlineCode, render, splitComment, truncateForCheckRun } from '../../activities/render.ts';
import { expectBalanced } from '../helpers/markdown.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'terrapin-render-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const planData = {
  shortSha: 'abc1234',
  sha: 'abc1234'.padEnd(40, '0'),
  project: 'root',
  workspace: 'default',
  summaryLine: 'Plan: 1 to add, 0 to change, 0 to destroy.',
  hasChanges: true,
};

describe('fenceCode', () => {
  it('uses a fence longer than any backtick run inside', () => {
    expect(fenceCode('plain', 'diff')).toBe('```diff\nplain\n```');
    expect(fenceCode('has ```` four', 'text')).toBe('`````text\nhas ```` four\n`````');
  });
});

describe('render', () => {
  it('renders the plan comment with marker, summary, collapsed diff and the next step', async () => {
    const planText = await file('plan.txt', '+   resource "terraform_data" "a" {\n+       input = "<b>&</b>"\n    }\n');
    const out = await render({ template: 'plan', data: planData, files: { planText } });
    expect(out).toContain(`<!-- terrapin:plan ${planData.sha} -->`);
    expect(out).toContain('**Terrapin plan** for `abc1234`');
    expect(out).toContain(planData.summaryLine);
    expect(out).toContain('<details><summary>Show plan</summary>\n\n```diff\n+   resource "terraform_data" "a" {\n+       input = "<b>&</b>"\n    }\n```\n\n</details>');
    expect(out).toContain('Comment `/approve` (a writer other than the author) to approve and apply this plan, or `/plan` to re-plan.');
    expectBalanced(out);
  });

  it('says there is nothing to apply for an empty plan', async () => {
    const planText = await file('empty.txt', 'No changes. Your infrastructure matches the configuration.');
    const out = await render({ template: 'plan', data: { ...planData, summaryLine: 'No changes.', hasChanges: false }, files: { planText } });
    expect(out).toContain('Nothing to apply.');
    expect(out).not.toContain('/approve');
  });

  it('renders a plan failure with the step and the output collapsed', async () => {
    const output = await file('err.log', '$ terraform init\nError: Unclosed configuration block');
    const out = await render({ template: 'plan-error', data: { ...planData, step: 'init', exitCode: 1 }, files: { output } });
    expect(out).toContain('The `init` step failed with exit code 1.');
    expect(out).toContain('```text\n$ terraform init\nError: Unclosed configuration block\n```');
    expect(out).toMatch(/Push a fix or comment `\/plan`/);
    expectBalanced(out);
  });

  it.each([
    ['applied', undefined, '**Applied**'],
    ['failed', { status: 'rolled-back', baseRef: 'main', baseSha: 'def5678'.padEnd(40, '0'), shortBaseSha: 'def5678' }, '**Apply failed — rolled back to `main` (def5678)**'],
    ['failed', { status: 'rollback-failed', baseRef: 'main' }, '**Apply failed — rollback failed — manual action needed**'],
    ['failed', { status: 'disabled', baseRef: 'main' }, '**Apply failed — rollback disabled (`onFailure: none`)**'],
    ['unknown', undefined, '**Apply outcome unknown — needs attention**'],
  ])('renders the apply comment for %s %o', async (outcome, rollback, headline) => {
    const output = await file('apply.log', 'Apply complete!');
    const out = await render({ template: 'apply', data: { ...planData, outcome, rollback, actor: 'alice' }, files: { output } });
    expect(out).toContain(headline);
    expect(out).toContain('<details><summary>Apply output</summary>');
    expectBalanced(out);
    if (outcome === 'unknown') expect(out).toMatch(/Do not re-run the apply blindly[\s\S]*`\/plan`/);
  });

  it('says an apply was verified after a worker restart, with the plan made then instead of an apply log', async () => {
    const afterRestartPlan = await file('resume-plan.txt', 'No changes. Your infrastructure matches the configuration.');
    const out = await render({ template: 'apply', data: { ...planData, outcome: 'applied', verifiedAfterRestart: true, actor: 'alice' }, files: { afterRestartPlan } });
    expect(out).toContain('**Applied (verified after a worker restart)**');
    expect(out).toContain('<details><summary>Plan after the restart</summary>\n\n```diff\nNo changes.');
    expect(out).not.toContain('Apply output');
    expectBalanced(out);
    const check = await render({ template: 'checks/apply-done', data: { ...planData, verifiedAfterRestart: true, actor: 'alice' } });
    expect(check.split('\n')[0]).toBe('Applied (verified after a worker restart)');
    const plain = await render({ template: 'checks/apply-done', data: { ...planData, actor: 'alice' } });
    expect(plain).not.toContain('restart');
  });

  it('shows what is still pending when an interrupted apply needs attention', async () => {
    const afterRestartPlan = await file('pending-plan.txt', '-/+ resource "terraform_data" "second" {');
    const out = await render({ template: 'apply', data: { ...planData, outcome: 'unknown', error: 'worker lost' }, files: { afterRestartPlan } });
    expect(out).toContain('**Apply outcome unknown — needs attention**');
    expect(out).toContain('<details><summary>Plan after the restart (what is still pending)</summary>\n\n```diff\n-/+ resource "terraform_data" "second" {');
    expectBalanced(out);
  });

  it('includes the rollback output when there is one', async () => {
    const output = await file('apply2.log', 'Error: boom');
    const rollbackOutput = await file('rollback.log', 'Apply complete! Resources: 0 added, 1 changed');
    const rollback = { status: 'rolled-back', baseRef: 'main', baseSha: 'def5678', shortBaseSha: 'def5678' };
    const out = await render({ template: 'apply', data: { ...planData, outcome: 'failed', rollback }, files: { output, rollbackOutput } });
    expect(out).toContain('<details><summary>Rollback output</summary>\n\n```text\nApply complete! Resources: 0 added, 1 changed\n```');
  });

  it('says so when an output file is gone', async () => {
    const out = await render({ template: 'plan', data: planData, files: { planText: join(dir, 'missing.txt') } });
    expect(out).toContain('The plan text is no longer available.');
  });

  it('loads a changeSummary file as the change summary above the plan, and leaves it out when the file is gone or not JSON', async () => {
    const planText = await file('summary-plan.txt', '+   resource "terraform_data" "a" {');
    const planJson = await file('plan.json', JSON.stringify({ resource_changes: [{ address: 'terraform_data.a', change: { actions: ['create'] } }] }));
    const out = await render({ template: 'plan', data: planData, files: { planText, changeSummary: planJson } });
    expect(out).toContain(`**${planData.summaryLine}**\n\n**Create (1)**\n- \`terraform_data.a\`\n\n<details><summary>Show plan</summary>`);
    const without = await render({ template: 'plan', data: planData, files: { planText } });
    expect(without).toContain(`**${planData.summaryLine}**\n\n<details><summary>Show plan</summary>`);
    for (const changeSummary of [join(dir, 'missing.json'), await file('not.json', '{"resource_changes": [')]) {
      expect(await render({ template: 'plan', data: planData, files: { planText, changeSummary } })).toBe(without);
    }
  });

  it('refuses template names that leave the templates dir', async () => {
    await expect(render({ template: '../package', data: {} })).rejects.toThrow(/Invalid template name/);
  });
});

describe('splitComment', () => {
  it('returns short text unchanged', () => {
    expect(splitComment('hello\nworld')).toEqual(['hello\nworld']);
  });

  it('splits a 70,000-character plan into balanced parts that each fit', async () => {
    const lines = Array.from({ length: 1_000 }, (_, i) => `+   resource "terraform_data" "r${i}" { input = "${'x'.repeat(40)}" }`);
    expect(lines.join('\n').length).toBeGreaterThan(70_000);
    const planText = await file('big.txt', lines.join('\n'));
    const out = await render({ template: 'plan', data: planData, files: { planText } });
    expect(out.length).toBeGreaterThan(70_000);

    const parts = splitComment(out);
    expect(parts.length).toBe(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(65_536);
      expectBalanced(part);
    }
    expect(parts[0]!.startsWith(`<!-- terrapin:plan ${planData.sha} -->`)).toBe(true);
    expect(parts[0]!.endsWith('\n```\n</details>')).toBe(true);
    expect(parts[1]!.startsWith('<details><summary>Show plan (continued)</summary>\n\n```diff\n+   resource')).toBe(true);
    expect(parts[1]!).toContain('Comment `/approve`');
    // Nothing lost, nothing reordered.
    const body = parts.join('\n').split('\n').filter((l) => l.startsWith('+   resource'));
    expect(body).toEqual(lines);
  });

  it('takes no tag in an inline code span for one: an address from a PR cannot open or close a section', () => {
    // A summary line lists addresses in code spans; a for_each key may hold any text.
    const spoofs = ['- `terraform_data.x["</details>"]`', '- ``a["`<details><summary>spoof"]``', '- `<details>` and `</details>`'];
    const entries = Array.from({ length: 12 }, (_, i) => spoofs[i % spoofs.length]!);
    const text = ['<details><summary>Create (12)</summary>', '', ...entries, '', '</details>', 'end'].join('\n');
    const parts = splitComment(text, 120);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(120);
      expectBalanced(part);
      // Each part opens and closes exactly the one real section.
      expect(part.match(/^<details><summary>/gm)).toHaveLength(1);
      expect(part.match(/^<\/details>$/gm)).toHaveLength(1);
    }
    expect(parts.join('\n').split('\n').filter((l) => l.startsWith('- '))).toEqual(entries);
  });

  it('closes and reopens a longer fence nested in details, at a small limit', () => {
    const letters = 'abcdefghijklmnop'.split('');
    const text = ['intro', '<details><summary>Logs</summary>', '', '````text', ...letters, '````', '</details>', 'end'].join('\n');
    const parts = splitComment(text, 80);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(80);
      expectBalanced(part);
    }
    expect(parts.join('\n')).toContain('<details><summary>Logs (continued)</summary>\n\n````text');
    expect(parts.length).toBeGreaterThan(1);
    const content = parts.join('\n').split('\n').filter((l) => /^[a-p]$/.test(l));
    expect(content).toEqual(letters);
  });

  it('fails instead of looping when the limit cannot hold the open blocks', () => {
    const text = ['<details><summary>Logs</summary>', '', '````text', 'a', 'b', '````', '</details>'].join('\n');
    expect(() => splitComment(text, 60)).toThrow(RangeError);
  });

  it('hard-wraps a single line longer than the limit', () => {
    const long = 'y'.repeat(250);
    const parts = splitComment(['```', long, '```'].join('\n'), 100);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(100);
      expectBalanced(part);
    }
    expect(parts.join('').replace(/[^y]/g, '')).toBe(long);
  });
});

describe('truncateForCheckRun', () => {
  it('leaves short text alone', () => {
    expect(truncateForCheckRun('short')).toBe('short');
  });

  it('cuts long text, closes open blocks and says where the full text is', () => {
    const text = ['Summary', '<details><summary>Plan</summary>', '', '```diff', ...Array.from({ length: 5000 }, (_, i) => `+ line ${i}`), '```', '</details>'].join('\n');
    const out = truncateForCheckRun(text, 1_000);
    expect(out.length).toBeLessThanOrEqual(1_000);
    expectBalanced(out);
    expect(out).toMatch(/Truncated[\s\S]*full text is in the pull request comment/);
    expect(out.startsWith('Summary\n<details><summary>Plan</summary>')).toBe(true);
    expect(truncateForCheckRun(text).length).toBeLessThanOrEqual(65_535);
  });
});

describe('inlineCode and the {{code}} helper', () => {
  test('user text is literal: markup and mentions stay inside the code span', async () => {
    const text = await render({ template: 'replies/invalid-command', data: { command: 'plan', error: 'unexpected argument "@acme/admins" for /plan; <img src=x>' } });
    expect(text).toBe('Could not run `/plan`: `unexpected argument "@acme/admins" for /plan; <img src=x>`. Comment `/help` for the usage.\n');
  });

  test.each([
    ['plain', '`plain`'],
    ['a `tick` inside', '``a `tick` inside``'],
    ['`edge', '`` `edge ``'],
    ['two\nlines', '`two lines`'],
  ])('%j → %j', (input, expected) => {
    expect(inlineCode(input)).toBe(expected);
  });
});
