// Project hooks around plan and apply, with real terraform: what they are told, and what their
// failures stop.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { apply, plan } from '../../activities/terraform.ts';

let root: string;
const deps = () => ({ dataDir: root });
const target = () => ({ workDir: root, projectDir: 'infra', workspace: 'default', binary: 'terraform' as const });
const hookEnv = { PROJECT: 'infra', DIR: 'infra', WORKSPACE: 'default', HEAD_SHA: 'h'.repeat(40), BASE_SHA: 'b'.repeat(40), PR_NUMBER: '7' };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-hooks-'));
  await import('node:fs/promises').then((fs) => fs.mkdir(join(root, 'infra')));
  await writeFile(
    join(root, 'infra', 'main.tf'),
    `terraform {\n  backend "local" {\n    path = "${join(root, 'state.tfstate')}"\n  }\n}\nvariable "region" {}\nresource "terraform_data" "x" {\n  input = var.region\n}\n`,
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(`${root}.terrapin`, { recursive: true, force: true });
});

describe('hooks', () => {
  test('prePlan and postPlan run in the project dir with the documented variables and the project env', async () => {
    const planned = await plan(
      {
        ...target(),
        label: 'ok',
        env: { TF_VAR_region: 'eu-west-1', TEAM: 'platform' },
        hooks: { before: ['env > pre.env'], after: ['test -f "$PLANFILE" && echo "planned $PROJECT in $DIR for #$PR_NUMBER" > post.txt'] },
        hookEnv,
      },
      deps(),
    );
    expect(planned.ok).toBe(true);
    const pre = await readFile(join(root, 'infra', 'pre.env'), 'utf8');
    for (const line of ['PROJECT=infra', 'DIR=infra', 'WORKSPACE=default', `HEAD_SHA=${'h'.repeat(40)}`, `BASE_SHA=${'b'.repeat(40)}`, 'PR_NUMBER=7', 'TEAM=platform', `PLANFILE=../../${basename(root)}.terrapin/infra--default--ok/run/plan.tfplan`]) {
      expect(pre).toContain(line);
    }
    expect(await readFile(join(root, 'infra', 'post.txt'), 'utf8')).toBe('planned infra in infra for #7\n');
  });

  test('a failing prePlan hook stops the project before terraform runs and shows its output', async () => {
    const planned = await plan({ ...target(), label: 'pre', env: { TF_VAR_region: 'x' }, hooks: { before: ['echo "lint: 2 problems"; exit 3'], after: [] }, hookEnv }, deps());
    expect(planned).toMatchObject({ ok: false, step: 'prePlan', exitCode: 3 });
    if (planned.ok) return;
    expect(await readFile(planned.outputFile, 'utf8')).toContain('lint: 2 problems');
    expect(existsSync(`${root}.terrapin/infra--default--pre/run/plan.tfplan`)).toBe(false);
  });

  test('a failing postPlan hook (a policy check) fails the plan', async () => {
    const planned = await plan({ ...target(), label: 'post', env: { TF_VAR_region: 'x' }, hooks: { before: [], after: ['echo "policy: region x not allowed" >&2; exit 1'] }, hookEnv }, deps());
    expect(planned).toMatchObject({ ok: false, step: 'postPlan' });
  });

  test('a failing preApply hook applies nothing; postApply runs after a successful apply', async () => {
    const planned = await plan({ ...target(), label: 'apply', env: { TF_VAR_region: 'eu-central-1' }, hookEnv }, deps());
    if (!planned.ok) throw new Error('plan failed');
    const refused = await apply({ ...target(), label: 'apply', planFile: planned.planFile, expectedSha256: planned.planSha256, hooks: { before: ['exit 1'], after: [] }, hookEnv }, deps());
    expect(refused.ok).toBe(false);
    expect(existsSync(join(root, 'state.tfstate'))).toBe(false);

    const applied = await apply(
      { ...target(), label: 'apply', planFile: planned.planFile, expectedSha256: planned.planSha256, hooks: { before: [], after: ['echo "notified #$PR_NUMBER"'] }, hookEnv },
      deps(),
    );
    expect(applied.ok).toBe(true);
    expect(await readFile(applied.outputFile, 'utf8')).toContain('notified #7');
    expect(JSON.parse(await readFile(join(root, 'state.tfstate'), 'utf8')).resources[0].instances[0].attributes.input.value).toBe('eu-central-1');
  });

  test('a hook script that is a symlink out of the repository is refused by name, not run', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'terrapin-hook-outside-'));
    try {
      await writeFile(join(outside, 'steal.sh'), '#!/bin/sh\necho STOLEN-BY-HOOK\n', { mode: 0o755 });
      await symlink(join(outside, 'steal.sh'), join(root, 'infra', 'check.sh'));
      const planned = await plan({ ...target(), label: 'script', env: { TF_VAR_region: 'x' }, hooks: { before: ['./check.sh --strict'], after: [] }, hookEnv }, deps());
      expect(planned).toMatchObject({ ok: false, step: 'prePlan', exitCode: 126 });
      if (planned.ok) return;
      const log = await readFile(planned.outputFile, 'utf8');
      expect(log).toContain('hook script refused: infra/check.sh is a symbolic link to a path outside the repository');
      expect(log).not.toContain('STOLEN-BY-HOOK');
    } finally {
      await rm(join(root, 'infra', 'check.sh'), { force: true });
      await rm(outside, { recursive: true, force: true });
    }
  });

  test('where the sandbox does not work, repository code is refused with the reason and the fix; no hook or terraform runs', async () => {
    const sandbox = { kind: 'unavailable' as const, reason: 'bwrap: setting up uid map: Permission denied' };
    const planned = await plan({ ...target(), label: 'nosandbox', env: { TF_VAR_region: 'x' }, hooks: { before: ['touch hook-ran'], after: [] }, hookEnv }, { ...deps(), sandbox });
    expect(planned).toMatchObject({ ok: false, step: 'sandbox', exitCode: 1 });
    if (planned.ok) return;
    const log = await readFile(planned.outputFile, 'utf8');
    expect(log).toContain('Terrapin runs terraform and hooks only inside a sandbox (bubblewrap)');
    expect(log).toContain('bwrap: setting up uid map: Permission denied');
    expect(log).toContain('runner.sandbox: none');
    expect(existsSync(join(root, 'infra', 'hook-ran'))).toBe(false);
    expect(existsSync(`${root}.terrapin/infra--default--nosandbox/run/tf-data`)).toBe(false);
  });

  test('runner.sandbox none (the operator\'s opt-out) runs terraform and hooks as they are', async () => {
    const planned = await plan({ ...target(), label: 'unsandboxed', env: { TF_VAR_region: 'x' }, hooks: { before: ['id -u > uid.txt'], after: [] }, hookEnv }, { ...deps(), sandbox: { kind: 'none' as const } });
    expect(planned.ok).toBe(true);
    expect((await readFile(join(root, 'infra', 'uid.txt'), 'utf8')).trim()).toBe(String(process.getuid!()));
  });

  test('each repository has its own provider cache: a hook of one cannot plant a provider for another', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'terrapin-cache-'));
    try {
      const checkoutOf = async (repo: string) => {
        const dir = join(dataDir, 'work', 'acme', repo, 'pr-1', 'a'.repeat(40));
        await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
        await writeFile(join(dir, 'main.tf'), 'resource "terraform_data" "x" {}\n');
        return { workDir: dir, projectDir: '.', workspace: 'default', binary: 'terraform' as const };
      };
      const poison = 'mkdir -p "$TF_PLUGIN_CACHE_DIR/registry.terraform.io/hashicorp/aws" && echo evil > "$TF_PLUGIN_CACHE_DIR/registry.terraform.io/hashicorp/aws/planted" && exit 1';
      const a = await plan({ ...(await checkoutOf('attacker')), hooks: { before: [poison], after: [] } }, { dataDir });
      expect(a).toMatchObject({ ok: false, step: 'prePlan' });
      expect(existsSync(join(dataDir, 'plugin-cache', 'repos', 'acme', 'attacker', 'registry.terraform.io', 'hashicorp', 'aws', 'planted'))).toBe(true);
      const look = 'find "$TF_PLUGIN_CACHE_DIR" -name planted | grep -q . && echo "FOUND-$(echo PLANTED)"; echo "cache $TF_PLUGIN_CACHE_DIR"; exit 1';
      const b = await plan({ ...(await checkoutOf('victim')), hooks: { before: [look], after: [] } }, { dataDir });
      if (b.ok) throw new Error('the hook should have failed');
      const log = await readFile(b.outputFile, 'utf8');
      expect(log).toContain(`cache ${join(dataDir, 'plugin-cache', 'repos', 'acme', 'victim')}`);
      expect(log).not.toMatch(/^FOUND-PLANTED$/m);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
