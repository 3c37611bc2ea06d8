// What becomes of an apply whose worker died: the activity that waits for what is left of it, plans again
// and tells completed, untouched and unknown apart. Real terraform and real processes; no Temporal needed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { PlanResult, ProjectTarget } from '../../shared/activity-contracts.ts';
import { createGitActivities } from '../../activities/git-activities.ts';
import { applyOutputFile, checkedPaths, createTerraformActivities, runDataDir, type TerraformDeps } from '../../activities/terraform.ts';
import { processesOfRun, resolveInterruptedApply } from '../../activities/interrupted-apply.ts';
import { testSandbox } from '../helpers/sandbox.ts';
import { createFixtureRepo, readState, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';

let root: string;
let stateFile: string;
let fixture: FixtureRepo | undefined;
let deps: TerraformDeps & { getInstallationToken: () => Promise<string> };

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-interrupted-'));
  stateFile = join(root, 'state', 'terraform.tfstate');
  deps = { dataDir: join(root, 'data'), getInstallationToken: async () => 'unused', sandbox: testSandbox([join(root, 'state')]) };
});
afterEach(async () => {
  await fixture?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

/** The fixture checked out and planned under label `a` (the approved plan), ready for an apply. */
async function approved(resources: Parameters<typeof terraformFixture>[0]['resources']) {
  fixture = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources }) });
  const git = createGitActivities(deps);
  const tf = createTerraformActivities(deps);
  const { workDir } = await git.checkout({ repo: { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl }, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  const at: ProjectTarget = { workDir, projectDir: '.', workspace: 'default', binary: 'terraform', label: 'a' };
  const made: PlanResult = await tf.plan(at);
  if (!made.ok) throw new Error(`plan failed, see ${made.outputFile}`);
  const resolve = () => resolveInterruptedApply({ interrupted: at, planSha256: made.planSha256, replan: { ...at, label: 'a-resume' } }, deps);
  return { tf, at, made, resolve };
}

it('an apply that completed (its worker gone before reporting): completed, nothing left to do', async () => {
  const { tf, at, made, resolve } = await approved({ server: { input: 'v1' } });
  expect((await tf.apply({ ...at, planFile: made.planFile, expectedSha256: made.planSha256 })).ok).toBe(true);
  const found = await resolve();
  expect(found).toMatchObject({ verdict: 'completed', plan: { summary: { hasChanges: false } } });
});

it('an apply stopped before terraform ran (in a preApply hook): untouched, the same actions pending', async () => {
  const { tf, at, made, resolve } = await approved({ server: { input: 'v1' } });
  // The hook fails where a dead worker would have stopped: the state is recorded, terraform never runs.
  const stopped = await tf.apply({ ...at, planFile: made.planFile, expectedSha256: made.planSha256, hooks: { before: ['exit 3'], after: [] } });
  expect(stopped.ok).toBe(false);
  const found = await resolve();
  expect(found).toMatchObject({ verdict: 'untouched', plan: { summary: { add: 1, hasChanges: true } } });
  // The fresh plan is its own, under its own label: the approved plan's file is left as it was.
  expect(found.plan!.planFile).not.toBe(made.planFile);
});

it('a partial apply (one resource created, the other failed): unknown, with the plan still pending', async () => {
  const { tf, at, made, resolve } = await approved({ first: { input: 'v1' }, second: { input: 'v2', failOnApply: true } });
  expect((await tf.apply({ ...at, planFile: made.planFile, expectedSha256: made.planSha256 })).ok).toBe(false);
  expect((await readState(stateFile)).resources.map((r) => r.name)).toContain('first');
  const found = await resolve();
  expect(found.verdict).toBe('unknown');
  expect(found.reason).toContain('the state changed since the apply began');
  expect(found.plan?.planTextFile).toBeTruthy();
});

it('no record of the state as the apply began: never applied again, unknown', async () => {
  const { resolve } = await approved({ server: { input: 'v1' } });
  const found = await resolve();
  expect(found.verdict).toBe('unknown');
  expect(found.reason).toContain('was not recorded');
});

it('waits for the processes of the interrupted run (by its TF_DATA_DIR) to end before planning', async () => {
  const { at, resolve } = await approved({ server: { input: 'v1' } });
  const dataDir = await runDataDir(at, deps);
  // Stands in for the dead worker's orphaned terraform: a process with the run's TF_DATA_DIR.
  const orphan = spawn('sh', ['-c', 'sleep 2'], { env: { PATH: process.env.PATH, TF_DATA_DIR: dataDir }, detached: true, stdio: 'ignore' });
  const exited = new Promise<void>((r) => orphan.once('exit', () => r()));
  await expect.poll(() => processesOfRun(dataDir)).toContain(orphan.pid);
  let orphanEnded = false;
  void exited.then(() => (orphanEnded = true));
  await resolve();
  expect(orphanEnded).toBe(true);
  expect(await processesOfRun(dataDir)).toEqual([]);
});

/**
 * A worker that dies inside terraform apply, run for real: a stand-in worker process runs the apply
 * activity of a plan whose provisioner waits for a `go` file, and is killed with SIGKILL once the
 * provisioner has started. The state already exists (an earlier apply), so "untouched" is a real question.
 */
async function dyingWorker() {
  const stateDir = join(root, 'state');
  const started = join(stateDir, 'started');
  const go = join(stateDir, 'go');
  const counter = join(stateDir, 'count');
  const base = terraformFixture({ stateFile, resources: { base: { input: 'base' } } });
  fixture = await createFixtureRepo({ 'main.tf': base });
  const git = createGitActivities(deps);
  const tf = createTerraformActivities(deps);
  const repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
  const first = await git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  const baseAt: ProjectTarget = { workDir: first.workDir, projectDir: '.', workspace: 'default', binary: 'terraform', label: 'base' };
  const basePlan = await tf.plan(baseAt);
  if (!basePlan.ok) throw new Error('base plan failed');
  expect((await tf.apply({ ...baseAt, planFile: basePlan.planFile, expectedSha256: basePlan.planSha256 })).ok).toBe(true);

  // The provisioner waits for `go`, or gives up once the test's dir is gone (a failed test leaves nothing running).
  const server = `resource "terraform_data" "server" {\n  input = "v1"\n  provisioner "local-exec" {\n    command = "touch ${started}; until [ -e ${go} ] || [ ! -d ${stateDir} ]; do sleep 0.05; done; echo applied >> ${counter}"\n  }\n}\n`;
  const sha = await fixture.commit({ 'main.tf': `${base}\n${server}` });
  const second = await git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha });
  const at: ProjectTarget = { workDir: second.workDir, projectDir: '.', workspace: 'default', binary: 'terraform', label: 'a' };
  const made = await tf.plan(at);
  if (!made.ok) throw new Error('plan failed');
  const stateBefore = await readFile(stateFile, 'utf8');

  const worker = `
    const { createTerraformActivities } = await import(${JSON.stringify(new URL('../../activities/terraform.ts', import.meta.url).href)});
    const { testSandbox } = await import(${JSON.stringify(new URL('../helpers/sandbox.ts', import.meta.url).href)});
    const deps = { dataDir: ${JSON.stringify(deps.dataDir)}, sandbox: testSandbox([${JSON.stringify(stateDir)}]) };
    await createTerraformActivities(deps).apply(${JSON.stringify({ ...at, planFile: made.planFile, expectedSha256: made.planSha256 })});`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', worker], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await expect.poll(() => existsSync(started), { timeout: 60_000, interval: 50 }).toBe(true);
  child.kill('SIGKILL');
  await exited;
  const resolve = () => resolveInterruptedApply({ interrupted: at, planSha256: made.planSha256, replan: { ...at, label: 'a-resume' } }, deps);
  return { at, go, counter, stateBefore, resolve };
}

it('a worker killed inside terraform apply: its terraform finishes the apply and saves the state; completed, applied once', async () => {
  const { at, go, counter, resolve } = await dyingWorker();
  // terraform writes its output to a file, not to the dead worker's pipe: it is still running.
  expect((await processesOfRun(await runDataDir(at, deps))).length).toBeGreaterThan(0);
  await writeFile(go, '');
  const found = await resolve();
  expect(found).toMatchObject({ verdict: 'completed', plan: { summary: { hasChanges: false } } });
  expect((await readFile(counter, 'utf8')).trim().split('\n')).toEqual(['applied']);
  expect((await readState(stateFile)).resources.map((r) => r.name).sort()).toEqual(['base', 'server']);
});

it('a worker killed together with its terraform (a node gone) after a change began: unknown, never applied again', async () => {
  const { at, counter, stateBefore, resolve } = await dyingWorker();
  const dataDir = await runDataDir(at, deps);
  // Everything of the run dies with the node: terraform and its provisioner's shell.
  for (let left = await processesOfRun(dataDir); left.length > 0; left = await processesOfRun(dataDir)) {
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
  // The state is the one the apply began with, and the same change is pending: only the output tells.
  expect(await readFile(stateFile, 'utf8')).toBe(stateBefore);
  const checked = await checkedPaths(deps, at);
  if (!checked.ok) throw new Error(checked.message);
  expect(await readFile(applyOutputFile(checked.paths.outDir), 'utf8')).toContain('terraform_data.server: Creating...');
  const found = await resolve();
  expect(found.verdict).toBe('unknown');
  expect(found.reason).toBe('terraform had begun changing resources, but the state does not show it');
  expect(found.plan?.summary).toMatchObject({ add: 1, hasChanges: true });
  expect(existsSync(counter)).toBe(false);
});
