// Local runs (no Temporal, no GitHub): the executor in-process for the pipeline's behaviour, and the real
// CLI in a child process for what a user sees: the refusal without --auto-approve, and Ctrl-C mid-apply.
// Real terraform (terraform_data, local-exec, local backend in each project dir), real git, bubblewrap.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { createFixtureRepo, FAIL_ON_APPLY_MESSAGE, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { runLocal, type LocalSummary } from '../../local/executor.ts';
import { untilExists } from '../helpers/until-exists.ts';

const CLI = fileURLToPath(new URL('../../bin/terrapin.mjs', import.meta.url));

const CONFIG = `projects:
  - name: network
    dir: network
  - name: database
    dir: database
    inputs:
      vpc_id: network.outputs.vpc_id
    hooks:
      prePlan: echo "planning $PROJECT in $DIR" > hook-plan.txt
      postApply: echo "applied $PROJECT" > hook-apply.txt
  - name: app
    dir: app
    inputs:
      endpoint: database.outputs.endpoint
`;

interface Versions {
  vpc?: string;
  backupFails?: boolean;
}

/** Three projects in a chain; each keeps its state in its own dir (the local backend's default path). */
function files(v: Versions = {}): Record<string, string> {
  const fail = `  provisioner "local-exec" {\n    command = "echo '${FAIL_ON_APPLY_MESSAGE}' >&2; exit 1"\n  }\n`;
  return {
    '.gitignore': '*.tfstate\n*.tfstate.backup\nhook-*.txt\n',
    '.terrapin.yml': CONFIG,
    'network/main.tf': `resource "terraform_data" "vpc" {\n  input = "${v.vpc ?? 'vpc-1'}"\n}\noutput "vpc_id" {\n  value = terraform_data.vpc.output\n}\n`,
    'database/main.tf':
      `variable "vpc_id" {}\nresource "terraform_data" "db" {\n  input = "\${var.vpc_id}/db"\n}\n` +
      (v.backupFails ? `resource "terraform_data" "backup" {\n  input = "nightly"\n${fail}}\n` : '') +
      `output "endpoint" {\n  value = "db.\${var.vpc_id}"\n}\n`,
    'app/main.tf': `variable "endpoint" {}\nresource "terraform_data" "app" {\n  input = var.endpoint\n}\n`,
  };
}

const PROJECTS = ['network', 'database', 'app'] as const;

/** Each project's resources and their `input` values, from its state file. */
async function resources(dir: string): Promise<Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const name of PROJECTS) {
    const state = JSON.parse(await readFile(join(dir, name, 'terraform.tfstate'), 'utf8')) as { resources: Array<{ name: string; instances: Array<{ attributes: { input?: { value: unknown } } }> }> };
    out[name] = Object.fromEntries(state.resources.map((r) => [r.name, r.instances[0]?.attributes.input?.value ?? null]));
  }
  return out;
}

const byName = (s: LocalSummary) => Object.fromEntries(s.projects.map((p) => [p.name, p]));

const repos: FixtureRepo[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function fixture(v: Versions = {}): Promise<FixtureRepo> {
  const repo = await createFixtureRepo(files(v));
  repos.push(repo);
  return repo;
}

/** Writes the files into the working tree without committing them (what a user edits before a run). */
async function edit(repo: FixtureRepo, changed: Record<string, string>): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  for (const [path, text] of Object.entries(changed)) await writeFile(join(repo.dir, path), text);
}

describe('terrapin run (local executor)', () => {
  it('applies a three-project chain in order, each output passed downstream, then plans no changes', async () => {
    const repo = await fixture();
    const events: string[] = [];
    const applied = await runLocal({ dir: repo.dir, command: 'apply', autoApprove: true, onEvent: (e) => events.push(`${e.type}:${e.project}:${e.kind}`) });

    expect(applied.ok).toBe(true);
    expect(applied.projects.map((p) => [p.name, p.status, p.changes])).toEqual([
      ['network', 'applied', { add: 1, change: 0, destroy: 0 }],
      ['database', 'applied', { add: 1, change: 0, destroy: 0 }],
      ['app', 'applied', { add: 1, change: 0, destroy: 0 }],
    ]);
    // Dependency order: each starts only after its upstream is done.
    expect(events).toEqual(['start:network:apply', 'done:network:apply', 'start:database:apply', 'done:database:apply', 'start:app:apply', 'done:app:apply']);
    // network's output reached database as vpc_id, and database's reached app as endpoint.
    expect(await resources(repo.dir)).toEqual({ network: { vpc: 'vpc-1' }, database: { db: 'vpc-1/db' }, app: { app: 'db.vpc-1' } });
    // The project's hooks ran around its plan and apply, told which project they run for.
    expect(await readFile(join(repo.dir, 'database', 'hook-plan.txt'), 'utf8')).toBe('planning database in database\n');
    expect(await readFile(join(repo.dir, 'database', 'hook-apply.txt'), 'utf8')).toBe('applied database\n');

    const planned = await runLocal({ dir: repo.dir, command: 'plan' });
    expect(planned.ok).toBe(true);
    expect(planned.projects.map((p) => [p.name, p.status])).toEqual([['network', 'no-changes'], ['database', 'no-changes'], ['app', 'no-changes']]);
    // Terrapin's files stay under .terrapin/local, which git ignores: the checkout is as clean as before.
    expect((await execa('git', ['status', '--porcelain'], { cwd: repo.dir })).stdout).toBe('');

    // A change upstream plans with its downstreams reading the current outputs.
    await edit(repo, { 'network/main.tf': files({ vpc: 'vpc-2' })['network/main.tf']! });
    const changed = await runLocal({ dir: repo.dir, command: 'plan', projects: ['network'] });
    expect(changed.projects.map((p) => [p.name, p.status, p.changes])).toEqual([['network', 'planned', { add: 0, change: 1, destroy: 0 }]]);
    expect(await readFile(changed.projects[0]!.logFile!, 'utf8')).toContain('"vpc-1" -> "vpc-2"');
  });

  it('rolls the applied projects back to --base when an apply fails (the directory a subdirectory of the repository)', async () => {
    const repo = await createFixtureRepo(Object.fromEntries(Object.entries(files()).map(([path, text]) => [`infra/${path}`, text])));
    repos.push(repo);
    const dir = join(repo.dir, 'infra');
    expect((await runLocal({ dir, command: 'apply', autoApprove: true })).ok).toBe(true);
    // Uncommitted: network moves to vpc-2, and database gains a resource whose provisioner fails.
    await edit(repo, { 'infra/network/main.tf': files({ vpc: 'vpc-2' })['network/main.tf']!, 'infra/database/main.tf': files({ backupFails: true })['database/main.tf']! });

    const summary = await runLocal({ dir, command: 'apply', autoApprove: true, base: 'main' });

    expect(summary.ok).toBe(false);
    const p = byName(summary);
    expect(p.network).toMatchObject({ status: 'applied', rollback: { status: 'rolled-back', baseRef: 'main', baseSha: await repo.head() } });
    expect(p.database).toMatchObject({ status: 'apply-failed', rollback: { status: 'rolled-back', baseRef: 'main' } });
    expect(await readFile(p.database!.logFile!, 'utf8')).toContain(FAIL_ON_APPLY_MESSAGE);
    // app never ran: its upstream failed.
    expect(p.app).toMatchObject({ status: 'skipped', skippedBecause: 'database' });
    expect(p.app!.durationMs).toBeUndefined();
    // The real state is main's again: vpc-1 everywhere, the failed backup gone.
    expect(await resources(dir)).toEqual({ network: { vpc: 'vpc-1' }, database: { db: 'vpc-1/db' }, app: { app: 'db.vpc-1' } });
  });

  it('without --base a failed apply is reported and nothing is rolled back; a --base that names no commit is refused first', async () => {
    const repo = await fixture();
    expect((await runLocal({ dir: repo.dir, command: 'apply', autoApprove: true })).ok).toBe(true);
    await edit(repo, { 'network/main.tf': files({ vpc: 'vpc-2' })['network/main.tf']!, 'database/main.tf': files({ backupFails: true })['database/main.tf']! });
    await expect(runLocal({ dir: repo.dir, command: 'apply', autoApprove: true, base: 'no-such-branch' })).rejects.toThrow(`--base no-such-branch: no such commit in ${repo.dir}`);
    expect((await resources(repo.dir)).network).toEqual({ vpc: 'vpc-1' });
    const summary = await runLocal({ dir: repo.dir, command: 'apply', autoApprove: true });
    const p = byName(summary);
    expect([p.network!.status, p.database!.status, p.app!.status]).toEqual(['applied', 'apply-failed', 'skipped']);
    expect(p.network!.rollback).toBeUndefined();
    expect((await resources(repo.dir)).network).toEqual({ vpc: 'vpc-2' });
  });

  it('runs independent projects side by side, up to .terrapin.yml parallelism', async () => {
    const twoRoots = (parallelism: number) => ({
      '.terrapin.yml': `parallelism: ${parallelism}\n`,
      'a/main.tf': 'resource "terraform_data" "a" {}\n',
      'b/main.tf': 'resource "terraform_data" "b" {}\n',
    });
    const order = async (parallelism: number) => {
      const repo = await createFixtureRepo(twoRoots(parallelism));
      repos.push(repo);
      const events: string[] = [];
      const summary = await runLocal({ dir: repo.dir, command: 'plan', onEvent: (e) => events.push(`${e.type}:${e.project}`) });
      expect(summary.projects.map((p) => [p.name, p.status])).toEqual([['a', 'planned'], ['b', 'planned']]);
      return events;
    };
    // Both start before either ends; one at a time, one after the other.
    expect((await order(2)).slice(0, 2).sort()).toEqual(['start:a', 'start:b']);
    expect(await order(1)).toEqual(['start:a', 'done:a', 'start:b', 'done:b']);
  });

  it('checks drift in every project: what the code would change against the current state', async () => {
    const repo = await fixture();
    expect((await runLocal({ dir: repo.dir, command: 'apply', autoApprove: true })).ok).toBe(true);
    await edit(repo, { 'network/main.tf': files({ vpc: 'vpc-2' })['network/main.tf']! });
    const summary = await runLocal({ dir: repo.dir, command: 'drift' });
    expect(summary.ok).toBe(true);
    expect(summary.projects.map((p) => [p.name, p.status, p.changes])).toEqual([
      ['network', 'drifted', { add: 0, change: 1, destroy: 0 }],
      ['database', 'clean', { add: 0, change: 0, destroy: 0 }],
      ['app', 'clean', { add: 0, change: 0, destroy: 0 }],
    ]);
    // Checking applies nothing.
    expect((await resources(repo.dir)).network).toEqual({ vpc: 'vpc-1' });
  });

  it('refuses to run when the sandbox does not work here, unless told to run unsandboxed', async () => {
    const repo = await fixture();
    const refused = runLocal({ dir: repo.dir, command: 'plan', sandbox: { kind: 'unavailable', reason: 'bwrap: No permissions to create new namespace' } });
    await expect(refused).rejects.toThrow('terraform and hooks run sandboxed (bubblewrap), which does not work here: bwrap: No permissions to create new namespace. Install bubblewrap, or pass --no-sandbox to run your own code unsandboxed');
    await expect(readdir(join(repo.dir, '.terrapin', 'local'))).resolves.toEqual(['worktree']);

    const unsandboxed = await runLocal({ dir: repo.dir, command: 'plan', projects: ['network'], noSandbox: true });
    expect(unsandboxed.projects.map((p) => [p.name, p.status])).toEqual([['network', 'planned']]);
  });

  it('refuses apply without --auto-approve: one line on stderr, exit 2, nothing run', async () => {
    const repo = await fixture();
    const r = await execa(process.execPath, [CLI, 'run', 'apply', '--dir', repo.dir], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('terrapin: approval gates need Temporal (`npm start`): pass --auto-approve to apply what the plan shows without one');
    expect(r.stdout).toBe('');
    await expect(readdir(join(repo.dir, '.terrapin'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses schedules and resuming: they need Temporal', async () => {
    const repo = await fixture();
    const schedule = await execa(process.execPath, [CLI, 'run', 'drift', '--schedule', '0 * * * *', '--dir', repo.dir], { reject: false });
    expect([schedule.exitCode, schedule.stderr]).toEqual([2, 'terrapin: schedules need Temporal (`npm start`): a local run checks once, now']);
    const resume = await execa(process.execPath, [CLI, 'run', 'plan', '--resume', '--dir', repo.dir], { reject: false });
    expect([resume.exitCode, resume.stderr]).toEqual([2, 'terrapin: resuming a run after a crash needs Temporal (`npm start`): a local run keeps no state across restarts']);
  });

  it('prints progress and a summary table, and --json the summary alone on stdout', async () => {
    const repo = await fixture();
    const human = await execa(process.execPath, [CLI, 'run', 'plan', '--dir', repo.dir], { reject: false });
    // Fresh state: network plans; its downstreams cannot read outputs that were never applied.
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toMatch(/✓ network: planned \+1 ~0 -0 \(\d+\.\ds\)/);
    expect(human.stdout).toMatch(/^network\s+network\s+planned\s+\+1 ~0 -0/m);
    expect(human.stdout).toMatch(/^app\s+app\s+skipped \(database failed\)/m);
    expect(human.stdout).toContain('Inputs: project network has no output "vpc_id" (needed for variable "vpc_id")');
    expect(human.stdout).toMatch(/^plan failed: 3 projects \(1 planned, 1 failed, 1 skipped\) in \d+\.\ds$/m);

    const json = await execa(process.execPath, [CLI, 'run', 'apply', '--auto-approve', '--json', '--dir', repo.dir], { reject: false });
    expect(json.exitCode).toBe(0);
    const summary = JSON.parse(json.stdout) as LocalSummary;
    expect(summary).toMatchObject({ command: 'apply', ok: true, cancelled: false, dir: repo.dir });
    expect(summary.projects.map((p) => p.status)).toEqual(['applied', 'applied', 'applied']);
    expect(json.stderr).toContain('✓ app: applied');
  });

  it('Ctrl-C during an apply stops terraform, leaves the state lock free and exits 130', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'terrapin-local-'));
    dirs.push(dir);
    const marker = join(dir, 'slow', 'started');
    await execa('mkdir', ['-p', join(dir, 'slow')]);
    const { writeFile } = await import('node:fs/promises');
    // The provisioner says when it runs, then takes far longer than the test waits.
    await writeFile(join(dir, 'slow', 'main.tf'), `resource "terraform_data" "slow" {\n  provisioner "local-exec" {\n    command = "touch ${marker}; sleep 120"\n  }\n}\n`);

    const child = spawn(process.execPath, [CLI, 'run', 'apply', '--auto-approve', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await untilExists(marker, 60_000);
    const sent = Date.now();
    child.kill('SIGINT');
    const code = await exited;

    expect(code).toBe(130);
    expect(Date.now() - sent).toBeLessThan(60_000);
    expect(stdout).toContain('Cancelling: stopping terraform and waiting for it to release its state lock');
    expect(stdout).toMatch(/^slow\s+slow\s+cancelled/m);
    // No process is left working in the directory (terraform, the provisioner's shell, sleep).
    expect(await processesIn(dir)).toEqual([]);
    // The lock is free: no lock file left beside the state, and a plan that will not wait for it succeeds.
    await expect(readdir(join(dir, 'slow'))).resolves.not.toContain('.terraform.tfstate.lock.info');
    await execa('terraform', ['init', '-input=false', '-no-color'], { cwd: join(dir, 'slow') });
    const plan = await execa('terraform', ['plan', '-lock-timeout=0s', '-input=false', '-no-color'], { cwd: join(dir, 'slow'), reject: false });
    expect(plan.stderr).not.toMatch(/Error/);
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).toMatch(/Plan: 1 to add|No changes/);
  });
});

/** Processes whose working directory is inside `dir`. */
async function processesIn(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
    if (cwd === dir || cwd.startsWith(`${dir}/`)) found.push(`${pid} ${(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ')}`);
  }
  return found;
}
