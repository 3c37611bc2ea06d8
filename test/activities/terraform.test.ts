import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PlanInput, PlanResult } from '../../shared/activity-contracts.ts';
import { createGitActivities } from '../../activities/git-activities.ts';
import { createTerraformActivities } from '../../activities/terraform.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { testSandbox } from '../helpers/sandbox.ts';
import { createFixtureRepo, FAIL_ON_APPLY_MESSAGE, readState, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';

let root: string;
let stateFile: string;
let fixture: FixtureRepo;
let repo: RepoRef;
let activities: ReturnType<typeof createTerraformActivities>;
let git: ReturnType<typeof createGitActivities>;

// Each test its own root (state, data dir) and fixture repository: none starts from what another left.
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-tf-'));
  stateFile = join(root, 'state', 'terraform.tfstate');
  const deps = {
    dataDir: join(root, 'data'),
    getInstallationToken: async () => 'unused',
    sandbox: testSandbox([join(root, 'state')]),
  };
  activities = createTerraformActivities(deps);
  git = createGitActivities(deps);
  fixture = await createFixtureRepo({
    'main.tf': terraformFixture({ stateFile, resources: { keep: { input: 'v1' }, gone: { input: 'x' }, swap: { input: 'a', triggersReplace: '1' } } }),
  });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  await fixture?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

async function planAt(sha: string, extra: Partial<PlanInput> = {}): Promise<{ workDir: string; result: PlanResult }> {
  const { workDir } = await git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha });
  const result = await activities.plan({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform', ...extra });
  return { workDir, result };
}

function ok(result: PlanResult) {
  if (!result.ok) throw new Error(`plan failed, see ${result.outputFile}`);
  return result;
}

/** Plans and applies the fixture's head: the state a test starts from when it needs one. */
async function applyHead(): Promise<void> {
  const { workDir, result } = await planAt(await fixture.head());
  const planned = ok(result);
  const applied = await activities.apply({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform', planFile: planned.planFile, expectedSha256: planned.planSha256 });
  expect(applied.ok).toBe(true);
  expect((await readState(stateFile)).resources.map((r) => r.name).sort()).toEqual(['gone', 'keep', 'swap']);
}

describe('plan and apply', () => {
  it('plans creation, applies the exact plan and changes the state', async () => {
    const { workDir, result } = await planAt(await fixture.head());
    const planned = ok(result);
    expect(planned.summary).toMatchObject({ add: 3, change: 0, destroy: 0, hasChanges: true, line: 'Plan: 3 to add, 0 to change, 0 to destroy.' });
    // Outside the checkout: nothing committed can redirect where the bot writes.
    expect(planned.planFile.startsWith(`${workDir}.terrapin/`)).toBe(true);
    expect(planned.planSha256).toMatch(/^[0-9a-f]{64}$/);
    const text = await readFile(planned.planTextFile, 'utf8');
    expect(text).toContain('+   resource "terraform_data" "keep" {');

    const applied = await activities.apply({
      workDir,
      projectDir: '.',
      workspace: 'default',
      binary: 'terraform',
      planFile: planned.planFile,
      expectedSha256: planned.planSha256,
    });
    expect(applied).toMatchObject({ ok: true, exitCode: 0 });
    expect(await readFile(applied.outputFile, 'utf8')).toContain('Apply complete! Resources: 3 added');
    const state = await readState(stateFile);
    expect(state.resources.map((r) => r.name).sort()).toEqual(['gone', 'keep', 'swap']);
  });

  it('counts change, destroy and replace and formats the text for a diff block', async () => {
    await applyHead();
    const sha = await fixture.commit({
      'main.tf': terraformFixture({ stateFile, resources: { keep: { input: 'v2' }, swap: { input: 'a', triggersReplace: '2' } } }),
    });
    const planned = ok((await planAt(sha)).result);
    expect(planned.summary).toMatchObject({ add: 1, change: 1, destroy: 2, line: 'Plan: 1 to add, 1 to change, 2 to destroy.' });
    const text = await readFile(planned.planTextFile, 'utf8');
    expect(text).toMatch(/^~ {3}resource "terraform_data" "keep" \{$/m);
    expect(text).toMatch(/^- {3}resource "terraform_data" "gone" \{$/m);
    expect(text).toMatch(/^-\/\+ resource "terraform_data" "swap" \{$/m);
    expect(text).toMatch(/^~ {7}input += "v1" -> "v2"$/m);
  });

  it('plans in a named workspace, created on demand', async () => {
    await applyHead(); // the default workspace's state: the new workspace must not see it
    const sha = await fixture.commit({
      'main.tf': terraformFixture({ stateFile, resources: { keep: { input: 'v2' }, swap: { input: 'a', triggersReplace: '2' } } }),
    });
    const planned = ok((await planAt(sha, { workspace: 'staging' })).result);
    // A fresh workspace has its own empty state: everything is new.
    expect(planned.summary.add).toBe(2);
    expect(planned.planFile).toContain('root--staging');
  });

  it('reports a syntax error as a failed plan with the error text', async () => {
    const sha = await fixture.commit({ 'main.tf': 'resource "terraform_data" "x" {\n  input = \n' });
    const { result } = await planAt(sha);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.exitCode).not.toBe(0);
    const output = await readFile(result.outputFile, 'utf8');
    expect(output).toMatch(/^\$ terraform init/);
    expect(output).toMatch(/Error: /);
  });

  it('refuses a missing or tampered plan file without running terraform', async () => {
    await applyHead();
    const sha = await fixture.commit({ 'main.tf': terraformFixture({ stateFile, resources: { keep: { input: 'v3' } } }) });
    const { workDir, result } = await planAt(sha);
    const planned = ok(result);
    const input = { workDir, projectDir: '.', workspace: 'default', binary: 'terraform' as const, planFile: planned.planFile, expectedSha256: planned.planSha256 };
    const before = await readState(stateFile);

    await expect(activities.apply({ ...input, planFile: join(workDir, 'nope.tfplan') })).rejects.toMatchObject({ type: 'PlanMissing', nonRetryable: true });
    await appendFile(planned.planFile, 'tampered');
    await expect(activities.apply(input)).rejects.toMatchObject({ type: 'PlanMismatch', nonRetryable: true });
    expect((await readState(stateFile)).serial).toBe(before.serial);
  });

  it('returns ok:false with the output when apply fails', async () => {
    const sha = await fixture.commit({
      'main.tf': terraformFixture({ stateFile, resources: { keep: { input: 'v2' }, broken: { failOnApply: true } } }),
    });
    const { workDir, result } = await planAt(sha);
    const planned = ok(result);
    const applied = await activities.apply({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform', planFile: planned.planFile, expectedSha256: planned.planSha256 });
    expect(applied.ok).toBe(false);
    expect(applied.exitCode).not.toBe(0);
    expect(await readFile(applied.outputFile, 'utf8')).toContain(FAIL_ON_APPLY_MESSAGE);
  });

  it('rejects a project dir outside the work dir', async () => {
    const { workDir } = await git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
    await expect(activities.plan({ workDir, projectDir: '../..', workspace: 'default', binary: 'terraform' })).rejects.toMatchObject({ type: 'InvalidInput' });
  });
});
