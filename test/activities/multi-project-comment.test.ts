// Plan and apply comments for several projects. Plan texts and logs are real terraform output captured
// once into test/fixtures/plans/ (capture.ts), so these tests run no terraform.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanSummary } from '../../shared/activity-contracts.ts';
import {
  renderApplyComment,
  renderPlanComment,
  type ProjectApplyReport,
  type ProjectPlanReport,
} from '../../activities/multi-project-comment.ts';
import { splitComment } from '../../activities/render.ts';
import { expectGolden } from '../helpers/golden.ts';
import { expectBalanced } from '../helpers/markdown.ts';

const PLANS = fileURLToPath(new URL('../fixtures/plans/', import.meta.url));
const fixture = (name: string) => join(PLANS, name);
const summaries = JSON.parse(readFileSync(fixture('summaries.json'), 'utf8')) as Record<string, PlanSummary>;

const sha = 'c0ffee1'.padEnd(40, '0');
const head = { sha, shortSha: 'c0ffee1' };
const known = { '<head-sha>': sha, '<head>': 'c0ffee1' };

const at = (dir: string) => ({ dir: `infra/${dir}`, workspace: 'default' });
const network: ProjectPlanReport = {
  name: 'network',
  ...at('network'),
  status: 'planned',
  summary: summaries['network.plan'],
  planTextFile: fixture('network.plan.txt'),
  showJsonFile: fixture('network.plan.json'),
};
const app: ProjectPlanReport = {
  name: 'app',
  ...at('app'),
  status: 'planned',
  summary: summaries['app.plan'],
  planTextFile: fixture('app.plan.txt'),
  showJsonFile: fixture('app.plan.json'),
};
const dns: ProjectPlanReport = {
  name: 'dns',
  ...at('dns'),
  status: 'no-changes',
  summary: summaries['dns.plan'],
  planTextFile: fixture('dns.plan.txt'),
  showJsonFile: fixture('dns.plan.json'),
};

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-multi-comment-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('renderPlanComment', () => {
  it('shows a table and a section per project: planned, no changes, failed, locked, skipped', async () => {
    const out = await renderPlanComment({
      ...head,
      projects: [
        network,
        app,
        dns,
        { name: 'db', ...at('db'), status: 'failed', errorFile: fixture('db.plan-error.log') },
        { name: 'cache', ...at('cache'), status: 'locked', lockedBy: 12, lockPlace: 2 },
        { name: 'search', ...at('search'), status: 'skipped', skippedBecause: 'db' },
      ],
    });
    expectGolden('multi-plan-mixed', out, known);
    expectBalanced(out);
    expect(out).toContain('| `network` | `infra/network` | `default` | planned | 3 | 0 | 0 |');
    expect(out).toContain('| `db` | `infra/db` | `default` | **failed** |  |  |  |');
    expect(out).toContain('<details><summary>search · skipped: upstream db failed</summary>');
    expect(out).toContain('`/approve -p <project>`');
    // A first plan has nothing to compare with.
    expect(out).not.toContain('previous plan');
    // Each project with changes gets its summary right above its collapsed plan; the others none.
    expect(out).toContain('#### `network`\n\n**Create (3)**\n- `terraform_data.subnet_a`');
    expect(out).toContain('**Outputs (1)**\n- `vpc_id` · added · known after apply\n\n<details><summary>network · ');
    expect(out).toContain('**⚠️ Replace (1)** · the old object is destroyed\n- ⚠️ `terraform_data.worker`\n\n<details><summary>app · ');
    expect(out.match(/^#### /gm)).toHaveLength(2);
  });

  it("shows each project's policy checks with their findings, in that project's section", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'terrapin-findings-'));
    try {
      await writeFile(join(dir, 'net.txt'), 'destroys in network\n(exit code 1)\n', { mode: 0o600 });
      await writeFile(join(dir, 'app.txt'), 'Passed checks: 2, Failed checks: 0\n', { mode: 0o600 });
      const out = await renderPlanComment({
        ...head,
        projects: [
          { ...network, policies: [{ name: 'no-destroy', passed: false, findingsFile: join(dir, 'net.txt') }] },
          { ...app, policies: [{ name: 'checkov', passed: true, findingsFile: join(dir, 'app.txt') }, { name: 'gone', passed: true, findingsFile: join(dir, 'missing.txt') }] },
          dns,
        ],
      });
      expectBalanced(out);
      const section = (name: string) => out.slice(out.indexOf(`<details><summary>${name} · `), out.indexOf(`<details><summary>${name === 'network' ? 'app' : 'dns'} · `));
      expect(section('network')).toContain('**Policy checks failed:** `no-destroy`. This plan cannot be applied until a policy owner comments `/approve-policies -p network`');
      expect(section('network')).toMatch(/<details><summary>❌ policy no-destroy · failed<\/summary>\n\n```text\ndestroys in network\n\(exit code 1\)\n```/);
      expect(section('app')).toContain('**Policy checks passed:** `checkov`, `gone`.');
      expect(section('app')).toContain('Passed checks: 2, Failed checks: 0');
      expect(section('app')).toContain('The findings are no longer available.');
      expect(out.slice(out.indexOf('<details><summary>dns · '))).not.toContain('Policy checks');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('after a re-plan, says per project whether the plan changed and shows how', async () => {
    const out = await renderPlanComment({
      ...head,
      projects: [
        { ...network, previousPlanTextFile: fixture('network.plan.txt') },
        { ...app, summary: summaries['app.replan'], planTextFile: fixture('app.replan.txt'), showJsonFile: fixture('app.replan.json'), previousPlanTextFile: fixture('app.plan.txt') },
        { ...dns, previousPlanTextFile: fixture('dns.plan.txt') },
      ],
    });
    expectGolden('multi-plan-replan', out, known);
    expectBalanced(out);
    expect(out).toContain('<details><summary>network · Plan: 3 to add, 0 to change, 0 to destroy. · no change since the previous plan</summary>');
    expect(out).toContain('<details><summary>app · Plan: 2 to add, 1 to change, 1 to destroy. · changed since the previous plan</summary>');
    const changes = /<summary>Changes since the previous plan<\/summary>\n\n```diff\n([\s\S]*?)\n```/.exec(out)?.[1];
    expect(changes).toMatch(/^@@ /);
    expect(changes).toMatch(/^-~ +input += "image:1.4.0" -> "image:1.5.0"$/m);
    expect(changes).toMatch(/^\+~ +input += "image:1.4.0" -> "image:1.5.1"$/m);
    expect(changes).toMatch(/^\+\+ +resource "terraform_data" "queue" \{$/m);
    expect(out.match(/Changes since the previous plan/g)).toHaveLength(1);
  });

  it('says so when a file is gone, and has nothing to approve without changes', async () => {
    const gone = join(tmp, 'gone.txt');
    const out = await renderPlanComment({
      ...head,
      projects: [
        { ...dns, planTextFile: gone, previousPlanTextFile: fixture('dns.plan.txt') },
        { name: 'db', ...at('db'), status: 'failed', errorFile: gone },
      ],
    });
    expect(out).toContain('The plan text is no longer available. Comment `/plan -p dns` to re-plan this project.');
    expect(out).toContain('The previous plan is no longer available to compare with.');
    expect(out).toContain('The error output is no longer available.');
    expect(out).toContain('Nothing to apply.');
    expect(out).not.toContain('/approve');
  });

  it('names the policy keys a PR changes: they take effect after merge', async () => {
    const out = await renderPlanComment({ ...head, projects: [network, app], policyChanges: ['defaults.applyRequirements', 'projects[app].hooks'] });
    expect(out).toContain("Policy in this pull request's `.terrapin.yml` differs from the default branch's and **takes effect after merge**: `defaults.applyRequirements`, `projects[app].hooks`.");
    expect(await renderPlanComment({ ...head, projects: [network, app] })).not.toContain('takes effect after merge');
  });

  it('escapes | in table cells', async () => {
    const out = await renderPlanComment({ ...head, projects: [{ ...dns, dir: 'a|b' }] });
    expect(out).toContain('| `dns` | `a\\|b` |');
  });

  it('splits a 12-project comment over 65,536 characters into balanced parts', async () => {
    // Each project plans ~90 resources: the real plan's resource blocks under new names.
    const real = readFileSync(fixture('network.plan.txt'), 'utf8');
    const block = /^ {2}# terraform_data\.vpc will be created\n[\s\S]*?\n {4}\}\n/m.exec(real)![0];
    const projects: ProjectPlanReport[] = [];
    for (let p = 1; p <= 12; p++) {
      const blocks = Array.from({ length: 90 }, (_, i) => block.replaceAll('vpc', `vpc_${p}_${i}`)).join('\n');
      const planTextFile = join(tmp, `p${p}.txt`);
      await writeFile(planTextFile, real.replace(/(Terraform will perform the following actions:\n\n)[\s\S]*?\n\n(Plan:)/, `$1${blocks}\n$2`));
      projects.push({ ...network, name: `p${p}`, dir: `infra/p${p}`, planTextFile, previousPlanTextFile: fixture('network.plan.txt') });
    }
    const out = await renderPlanComment({ ...head, projects });
    expect(out.length).toBeGreaterThan(65_536 * 2);
    expectBalanced(out);

    const parts = splitComment(out);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(65_536);
      expectBalanced(part);
    }
    expect(parts[0]).toMatch(/^<!-- terrapin:plan c0ffee1/);
    // Cuts fell inside a project's section and its plan, which the next part reopens.
    expect(parts.slice(1).some((part) => /^<details><summary>p\d+ · .* \(continued\)<\/summary>\n\n```diff\n/.test(part))).toBe(true);
    expect(parts.at(-1)).toContain('`/plan -p <project>`');
    // Nothing lost: every resource of every project is in some part.
    const all = parts.join('\n');
    for (let p = 1; p <= 12; p++) expect(all).toContain(`resource "terraform_data" "vpc_${p}_89"`);
  });
});

describe('renderApplyComment', () => {
  const apply = (name: string, result: ProjectApplyReport['result'], files: Partial<ProjectApplyReport> = {}): ProjectApplyReport => ({
    name,
    ...at(name),
    result,
    ...files,
  });

  it('shows each result in a table and the outputs collapsed per project', async () => {
    const out = await renderApplyComment({
      ...head,
      actor: 'octocat',
      projects: [
        apply('network', 'applied', { outputFile: fixture('network.apply.log') }),
        apply('app', 'rolled-back', { outputFile: fixture('app.apply-failed.log'), rollbackOutputFile: fixture('app.rollback.log') }),
        apply('cache', 'failed', { outputFile: fixture('cache.apply-failed.log') }),
        apply('search', 'skipped'),
        apply('dns', 'not-applied'),
      ],
    });
    expectGolden('multi-apply-mixed', out, known);
    expectBalanced(out);
    expect(out).toContain('| `app` | **failed — rolled back** |');
    expect(out).toContain('**Apply failed.**');
    // Projects that ran nothing have no section.
    expect(out).not.toContain('<summary>search');
    expect(out).toContain('<details><summary>app · apply and rollback output</summary>');
  });

  it('puts a failed rollback first, and says Applied when everything applied', async () => {
    const failed = await renderApplyComment({
      ...head,
      actor: 'octocat',
      projects: [
        apply('network', 'applied', { outputFile: fixture('network.apply.log') }),
        apply('app', 'rollback-failed', { outputFile: fixture('app.apply-failed.log'), rollbackOutputFile: join(tmp, 'gone.log') }),
      ],
    });
    expect(failed).toContain('| `app` | **failed — rollback failed** |');
    expect(failed).toContain('**Apply failed — rollback failed — manual action needed.**');
    expect(failed).toContain('The rollback output is no longer available.');
    expectBalanced(failed);

    const applied = await renderApplyComment({
      ...head,
      actor: 'octocat',
      projects: [apply('network', 'applied', { outputFile: fixture('network.apply.log') }), apply('dns', 'applied')],
    });
    expect(applied).toContain('\n**Applied**\n');
    expect(applied).not.toContain('failed');
  });
});
