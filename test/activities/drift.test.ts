// detectDrift with real terraform: the state is changed out of band the way it happens in practice —
// someone applies other code (a local checkout, an old branch) against the same state — and the default
// branch's code is then checked against it.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DriftReport } from '../../activities/drift.ts';
import { createGitActivities } from '../../activities/git-activities.ts';
import { createTerraformActivities } from '../../activities/terraform.ts';
import { testSandbox } from '../helpers/sandbox.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { createFixtureRepo, readState, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';

let root: string;
let stateFile: string;
let fixture: FixtureRepo;
let repo: RepoRef;
let activities: ReturnType<typeof createTerraformActivities>;
let git: ReturnType<typeof createGitActivities>;

const code = (keep: string) => terraformFixture({ stateFile, resources: { keep: { input: keep }, other: { input: 'o' } } });

// Each test its own root, state and fixture, deployed afresh: an out-of-band change or a broken commit
// made by one test is never what another starts from.
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-drift-'));
  stateFile = join(root, 'state', 'terraform.tfstate');
  const deps = { dataDir: join(root, 'data'), getInstallationToken: async () => 'unused', sandbox: testSandbox([join(root, 'state')]) };
  activities = createTerraformActivities(deps);
  git = createGitActivities(deps);
  fixture = await createFixtureRepo({ 'main.tf': code('v1') });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
  // Deploy the default branch the normal way.
  const { workDir } = await git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  const planned = await activities.plan({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform', label: 'deploy' });
  if (!planned.ok) throw new Error(`plan failed, see ${planned.outputFile}`);
  const applied = await activities.apply({
    workDir,
    projectDir: '.',
    workspace: 'default',
    binary: 'terraform',
    label: 'deploy',
    planFile: planned.planFile,
    expectedSha256: planned.planSha256,
  });
  expect(applied.ok).toBe(true);
});
afterEach(async () => {
  await fixture?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

async function detectAtHead(): Promise<DriftReport> {
  const { workDir } = await git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  return activities.detectDrift({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform' });
}

/** Applies other code against the same state from a directory of its own, as a person at a laptop would. */
async function applyOutOfBand(mainTf: string): Promise<void> {
  const dir = join(root, 'laptop');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'main.tf'), mainTf);
  const env = { PATH: process.env.PATH!, HOME: root, TF_IN_AUTOMATION: '1', TF_DATA_DIR: join(dir, '.terraform') };
  await execa('terraform', ['init', '-input=false', '-no-color'], { cwd: dir, env, extendEnv: false });
  await execa('terraform', ['apply', '-auto-approve', '-input=false', '-no-color'], { cwd: dir, env, extendEnv: false });
}

/** terraform_data stores `input` as a dynamic value: { value, type }. */
async function keepInput(): Promise<unknown> {
  const keep = (await readState(stateFile)).resources.find((r) => r.name === 'keep');
  return (keep?.instances[0]?.attributes.input as { value?: unknown } | undefined)?.value;
}

describe('detectDrift', () => {
  it('finds nothing when the state matches the code', async () => {
    const report = await detectAtHead();
    expect(report.error).toBeUndefined();
    expect(report).toMatchObject({ drifted: false, resources: [], refreshOnly: { changed: false }, plan: { changed: false } });
    if (report.error) return;
    expect(report.plan.summary.line).toBe('No changes.');
    // Two plans, two labels: their files never overwrite each other.
    expect(report.refreshOnly.textFile).not.toBe(report.plan.textFile);
    expect(report.refreshOnly.textFile).toContain('--drift-refresh');
    expect(report.plan.textFile).toContain('--drift-plan');
  });

  it('finds a terraform_data changed out of band, which only the normal plan shows', async () => {
    await applyOutOfBand(code('v2'));
    expect(await keepInput()).toBe('v2');

    const report = await detectAtHead();
    if (report.error) throw new Error(`detectDrift failed at ${report.error.step}, see ${report.error.outputFile}`);
    expect(report.drifted).toBe(true);
    expect(report.resources).toEqual(['terraform_data.keep']);
    // The pitfall: refresh-only sees nothing, since terraform_data has no remote object to read.
    expect(report.refreshOnly.changed).toBe(false);
    expect(report.plan).toMatchObject({ changed: true, summary: { add: 0, change: 1, destroy: 0 } });
    const text = await readFile(report.plan.textFile, 'utf8');
    expect(text).toMatch(/^~ {7}input += "v2" -> "v1"$/m);
    expect(report.plan.planSha256).toMatch(/^[0-9a-f]{64}$/);
    // Detection only looks: the state is as the out-of-band apply left it.
    expect(await keepInput()).toBe('v2');
  });

  it('lists resources the code would create or destroy as well', async () => {
    await applyOutOfBand(terraformFixture({ stateFile, resources: { keep: { input: 'v1' }, stray: { input: 's' } } }));
    const report = await detectAtHead();
    expect(report).toMatchObject({ drifted: true, resources: ['terraform_data.other', 'terraform_data.stray'] });
  });

  it('reports the failing step and its output for code that does not plan', async () => {
    await fixture.commit({ 'main.tf': `${code('v1')}\noutput "broken" {\n  value = terraform_data.missing.output\n}\n` });
    const report = await detectAtHead();
    expect(report).toMatchObject({ drifted: false, resources: [], error: { step: 'plan' } });
    expect(await readFile(report.error!.outputFile, 'utf8')).toContain('Reference to undeclared resource');
  });
});
