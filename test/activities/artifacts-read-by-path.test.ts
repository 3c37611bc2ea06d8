// Bot files read by path on a worker that does not have them: worker A plans (a real plan, stored in the
// PostgreSQL artifact store), its data dir is deleted, and worker B renders the plan comment, compares a
// re-plan with the approved plan and runs a policy check on the plan JSON, all with the real content fetched
// by path from the store. A tampered artifact is refused, a path nobody stored still reads as missing, and a
// fetched file is never written through a symlink.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { createGitActivities } from '../../activities/git-activities.ts';
import { createTerraformActivities } from '../../activities/terraform.ts';
import { postgresArtifactStore } from '../../activities/artifacts/postgres.ts';
import { ArtifactCorrupt, type ArtifactStore } from '../../activities/artifacts/index.ts';
import { readBotFile } from '../../activities/checkout-files.ts';
import { render } from '../../activities/render.ts';
import { comparePlans } from '../../activities/plan-compare.ts';
import { runPolicyChecks } from '../../activities/policy-checks.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { testSandbox } from '../helpers/sandbox.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';

const PG_URL = process.env.TERRAPIN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let admin: pg.Client;
let root: string;
let fixture: FixtureRepo;
let repo: RepoRef;
let store: ArtifactStore;
let table: string;

function worker(name: string) {
  const deps = { dataDir: join(root, name), getInstallationToken: async () => 'unused', sandbox: testSandbox([join(root, 'state')]), artifacts: store };
  return { deps, terraform: createTerraformActivities(deps), git: createGitActivities(deps) };
}

async function planOn(w: ReturnType<typeof worker>) {
  const { workDir } = await w.git.checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  const result = await w.terraform.plan({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform' });
  if (!result.ok) throw new Error(`plan failed: ${await readFile(result.outputFile, 'utf8')}`);
  return { workDir, result };
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
});
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-art-read-'));
  table = `artifacts_read_${randomBytes(6).toString('hex')}`;
  store = postgresArtifactStore({ url: PG_URL, table });
  fixture = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile: join(root, 'state', 'terraform.tfstate'), resources: { keep: { input: 'v1' } } }) });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  await store?.close();
  await admin.query(`drop table if exists ${table}_paths, ${table}`);
  await fixture?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

it("renders the comment, compares plans and runs a policy check on another worker's plan", async () => {
  const { result: planned } = await planOn(worker('a'));
  const planText = await readFile(planned.planTextFile, 'utf8');
  const showJson = await readFile(planned.showJsonFile, 'utf8');
  expect(planText).toContain('terraform_data.keep');
  await rm(join(root, 'a'), { recursive: true, force: true });

  const b = worker('b');
  // The plan comment: the plan text and the change summary, as the planning worker would show them.
  const comment = await render({
    template: 'plan',
    data: { shortSha: 'abc1234', sha: 'abc1234'.padEnd(40, '0'), project: 'root', workspace: 'default', summaryLine: 'Plan: 1 to add.', hasChanges: true },
    files: { planText: planned.planTextFile, changeSummary: planned.showJsonFile },
  });
  expect(comment).toContain('terraform_data.keep');
  expect(comment).toContain(planText.trim().split('\n')[0]);
  // Put back in place: later reads are local.
  expect(await readFile(planned.planTextFile, 'utf8')).toBe(planText);

  // A re-plan on B compared with the approved plan from A: the same plan, not a failed apply.
  await rm(join(root, 'a'), { recursive: true, force: true });
  const { workDir, result: replanned } = await planOn(b);
  expect(await comparePlans({ approved: planned, current: replanned })).toEqual({ same: true, changes: [] });

  // A policy check reads the plan JSON where PLAN_JSON points: there again, with A's content.
  await rm(join(root, 'a'), { recursive: true, force: true });
  const [checked] = await runPolicyChecks(
    {
      workDir,
      projectDir: '.',
      workspace: 'default',
      binary: 'terraform',
      label: 'policy',
      showJsonFile: planned.showJsonFile,
      env: { PROJECT: 'root', DIR: '.', WORKSPACE: 'default' },
      checks: [{ name: 'has-keep', run: 'grep -c terraform_data.keep "$PLAN_JSON"', projects: ['*'] }],
    },
    b.deps,
  );
  expect(checked).toMatchObject({ name: 'has-keep', passed: true, exitCode: 0 });
  expect(await readFile(planned.showJsonFile, 'utf8')).toBe(showJson);
}, 120_000);

it('refuses a tampered artifact, and a path nothing stored stays missing', async () => {
  const { result: planned } = await planOn(worker('a'));
  await rm(join(root, 'a'), { recursive: true, force: true });
  await admin.query(`update ${table} set content = content || 'tampered'::bytea where sha256 = $1`, [planned.stored!.planTextSha256]);
  worker('b');
  await expect(readBotFile(planned.planTextFile)).rejects.toBeInstanceOf(ArtifactCorrupt);
  // Never put in place, and the comment shows no plan text rather than the tampered one.
  await expect(readFile(planned.planTextFile)).rejects.toMatchObject({ code: 'ENOENT' });
  const comment = await render({
    template: 'plan',
    data: { shortSha: 'abc1234', sha: 'abc1234'.padEnd(40, '0'), project: 'root', workspace: 'default', summaryLine: 'Plan: 1 to add.', hasChanges: true },
    files: { planText: planned.planTextFile },
  });
  expect(comment).not.toContain('tampered');
  // The untampered JSON still reads.
  expect(JSON.parse(await readBotFile(planned.showJsonFile))).toHaveProperty('resource_changes');
  await expect(readBotFile(join(root, 'a', 'never-written.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
}, 120_000);

it('reads a fetched file but does not write it through a symlink on its way', async () => {
  const { result: planned } = await planOn(worker('a'));
  const showJson = await readFile(planned.showJsonFile, 'utf8');
  await rm(join(root, 'a'), { recursive: true, force: true });
  const elsewhere = join(root, 'elsewhere');
  await mkdir(elsewhere);
  await mkdir(dirname(dirname(planned.showJsonFile)), { recursive: true });
  await symlink(elsewhere, dirname(planned.showJsonFile));
  worker('b');
  expect(await readBotFile(planned.showJsonFile)).toBe(showJson);
  expect(await readdir(elsewhere)).toEqual([]);
}, 120_000);
