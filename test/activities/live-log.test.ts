// A run's live log: what `terrapin logs --follow` streams. Lines land in it while the command still runs
// (proved by a command that waits for the test before it goes on), scrubbed like the saved log; a project
// run's terraform writes its init and plan there, never the plan's JSON.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openLiveLog } from '../../activities/live-log.ts';
import { runCommand } from '../../activities/process.ts';
import { createGitActivities } from '../../activities/git-activities.ts';
import { createTerraformActivities, type TerraformDeps } from '../../activities/terraform.ts';
import { liveLogFile, PROJECT_RUN_WORKFLOW_TYPE } from '../../shared/runs.ts';
import type { PlanResult } from '../../shared/activity-contracts.ts';
import { testSandbox } from '../helpers/sandbox.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';

let dir: string;
let fixture: FixtureRepo | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'terrapin-live-'));
});
afterEach(async () => {
  await fixture?.cleanup();
  fixture = undefined;
  await rm(dir, { recursive: true, force: true });
});

const read = (file: string) => readFile(file, 'utf8').catch(() => '');

it('writes whole lines only, scrubbed, even when a secret arrives split over two chunks or spans lines', async () => {
  const file = join(dir, 'live', 'a.log');
  const secret = 'hunter2-secret-value';
  const multi = 'first-line-of-key\nsecond-line-of-key';
  const live = openLiveLog(file, [secret, multi], 'terraform plan');
  live.write('token hunter2-se');
  expect(await read(file)).toBe('$ terraform plan\n');
  live.write('cret-value here\nnext ');
  live.write('first-line-of-key\n');
  live.write('second-line-of-key then more');
  live.end();
  const text = await read(file);
  expect(text).toBe('$ terraform plan\ntoken [REDACTED] here\nnext [REDACTED]\n[REDACTED] then more\n');
  expect(text).not.toContain('hunter2');
});

it("removes other runs' live logs older than a day as a run starts one, and keeps the recent ones", async () => {
  const live = join(dir, 'live');
  await mkdir(live, { recursive: true });
  const old = join(live, 'old-run.log');
  const recent = join(live, 'recent-run.log');
  await writeFile(old, 'x\n');
  await writeFile(recent, 'y\n');
  const twoDaysAgo = new Date(Date.now() - 48 * 3600_000);
  await utimes(old, twoDaysAgo, twoDaysAgo);
  openLiveLog(join(live, 'new-run.log'), [], 'terraform plan').end();
  expect(existsSync(old)).toBe(false);
  expect(existsSync(recent)).toBe(true);
  expect(await read(join(live, 'new-run.log'))).toBe('$ terraform plan\n');
});

for (const mode of ['a pipe', 'a file (apply)'] as const) {
  it(`streams a running command's output (written to ${mode}) before the command ends`, async () => {
    const file = join(dir, 'live.log');
    const go = join(dir, 'go');
    const script = `echo "step one"; echo "to stderr" >&2; until [ -e ${go} ]; do sleep 0.05; done; echo "step two"`;
    const running = runCommand('sh', ['-c', script], { cwd: dir, liveLog: file, ...(mode === 'a file (apply)' ? { outputFile: join(dir, 'raw.out') } : {}) });
    try {
      // The command waits for `go`: these lines can only have come while it runs.
      await expect.poll(() => read(file), { timeout: 20_000, interval: 50 }).toContain('to stderr\n');
      expect(await read(file)).toContain('step one\n');
      expect(await read(file)).not.toContain('\nstep two');
    } finally {
      // Whatever happened above, the command is let go (it would wait forever).
      await writeFile(go, '');
    }
    const r = await running;
    expect(r.exitCode).toBe(0);
    // Followed live, the output is still whole in the command's own result.
    expect(r.output).toBe('step one\nto stderr\nstep two');
    expect(await read(file)).toBe(`$ sh -c ${script}\nstep one\nto stderr\nstep two\n`);
  });
}

it("a project run's plan: its live log holds init and plan, not the plan as JSON; other activities write none", async () => {
  const dataDir = join(dir, 'data');
  const stateDir = join(dir, 'state');
  const deps: TerraformDeps & { getInstallationToken: () => Promise<string> } = { dataDir, getInstallationToken: async () => 'unused', sandbox: testSandbox([stateDir]) };
  fixture = await createFixtureRepo({ 'main.tf': terraformFixture({ stateFile: join(stateDir, 'terraform.tfstate'), resources: { server: { input: 'v1' } } }) });
  const { workDir } = await createGitActivities(deps).checkout({ repo: { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl }, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() });
  const target = { workDir, projectDir: '.', workspace: 'default', binary: 'terraform' as const, label: 'a' };
  const tf = createTerraformActivities(deps);
  const runId = 'run:acme/infra:app:plan:0123456-1';
  const env = new MockActivityEnvironment({ workflowType: PROJECT_RUN_WORKFLOW_TYPE, workflowExecution: { workflowId: runId, runId: 'r1' } });
  const made: PlanResult = await env.run(tf.plan, target);
  expect(made.ok).toBe(true);
  const text = await read(liveLogFile(dataDir, runId));
  expect(text).toMatch(/^\$ terraform init -input=false -no-color\n/);
  expect(text).toContain('\n$ terraform plan -input=false -no-color -out=');
  expect(text).toContain('terraform_data.server will be created');
  expect(text).not.toContain('$ terraform show');
  expect(text).not.toContain('"format_version"');
  // The same plan in another workflow's activity (not a project run) keeps no live log.
  const other = new MockActivityEnvironment({ workflowType: 'prWorkflow', workflowExecution: { workflowId: 'pr:acme/infra:1', runId: 'r2' } });
  const again: PlanResult = await other.run(tf.plan, { ...target, label: 'b' });
  expect(again.ok).toBe(true);
  expect(existsSync(liveLogFile(dataDir, 'pr:acme/infra:1'))).toBe(false);
});
