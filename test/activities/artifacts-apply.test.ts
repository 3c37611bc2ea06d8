// The apply activity with an artifact store: a worker with another data dir (no work dir, no plan file,
// no initialized TF_DATA_DIR) applies the approved plan fetched by its hash; stored bytes that do not match
// their hash, or a hash the store never had, are refused before terraform runs.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createGitActivities } from '../../activities/git-activities.ts';
import { createTerraformActivities } from '../../activities/terraform.ts';
import { filesystemArtifactStore } from '../../activities/artifacts/filesystem.ts';
import { sha256Of, type ArtifactStore } from '../../activities/artifacts/index.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { testSandbox } from '../helpers/sandbox.ts';
import { createFixtureRepo, readState, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';

let root: string;
let stateFile: string;
let fixture: FixtureRepo;
let repo: RepoRef;
let store: ArtifactStore;
let storeDir: string;

/** One worker: its own data dir, the shared store. */
function worker(name: string) {
  const deps = { dataDir: join(root, name), getInstallationToken: async () => 'unused', sandbox: testSandbox([join(root, 'state')]), artifacts: store };
  return { terraform: createTerraformActivities(deps), git: createGitActivities(deps) };
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-art-apply-'));
  stateFile = join(root, 'state', 'terraform.tfstate');
  storeDir = join(root, 'store');
  store = filesystemArtifactStore(storeDir);
  fixture = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile, resources: { keep: { input: 'v1' } } }) });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  await fixture?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

async function planOn(w: ReturnType<typeof worker>) {
  const { workDir } = await w.git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  const result = await w.terraform.plan({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform' });
  if (!result.ok) throw new Error(`plan failed: ${await readFile(result.outputFile, 'utf8')}`);
  return result;
}

async function applyOn(w: ReturnType<typeof worker>, planFile: string, expectedSha256: string) {
  const { workDir } = await w.git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  return w.terraform.apply({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform', planFile, expectedSha256 });
}

it('stores the plan, its text and JSON; another worker applies the plan fetched by its hash', async () => {
  const planned = await planOn(worker('a'));
  expect(sha256Of(await readFile(planned.planFile))).toBe(planned.planSha256);
  expect((await store.get(planned.planSha256))!.equals(await readFile(planned.planFile))).toBe(true);
  expect((await store.get(planned.stored!.planTextSha256))!.toString()).toBe(await readFile(planned.planTextFile, 'utf8'));
  expect((await store.get(planned.stored!.showJsonSha256))!.toString()).toBe(await readFile(planned.showJsonFile, 'utf8'));
  await rm(join(root, 'a'), { recursive: true, force: true });

  const applied = await applyOn(worker('b'), planned.planFile, planned.planSha256);
  expect(applied.ok).toBe(true);
  expect((await readState(stateFile)).resources.map((r) => r.name)).toEqual(['keep']);
  // The log is stored too.
  expect((await store.get(applied.outputSha256!))!.toString()).toBe(await readFile(applied.outputFile, 'utf8'));
});

it('refuses a stored plan that no longer matches its hash, and a hash the store never had', async () => {
  const planned = await planOn(worker('a'));
  await rm(join(root, 'a'), { recursive: true, force: true });
  const stored = join(storeDir, planned.planSha256.slice(0, 2), planned.planSha256);
  await writeFile(stored, Buffer.concat([await readFile(stored), Buffer.from('tampered')]));
  await expect(applyOn(worker('b'), planned.planFile, planned.planSha256)).rejects.toMatchObject({ type: 'PlanMismatch', nonRetryable: true });
  await expect(applyOn(worker('c'), planned.planFile, sha256Of(Buffer.from('never planned')))).rejects.toMatchObject({ type: 'PlanMissing', nonRetryable: true });
  // Nothing ran: no state was written.
  await expect(readFile(stateFile)).rejects.toMatchObject({ code: 'ENOENT' });
});

it('refuses a plan file changed on disk: it is not replaced from the store', async () => {
  const w = worker('a');
  const planned = await planOn(w);
  await writeFile(planned.planFile, 'not the approved plan');
  await expect(applyOn(w, planned.planFile, planned.planSha256)).rejects.toMatchObject({ type: 'PlanMismatch', nonRetryable: true });
  expect(await readFile(planned.planFile, 'utf8')).toBe('not the approved plan');
  await expect(readFile(stateFile)).rejects.toMatchObject({ code: 'ENOENT' });
});
