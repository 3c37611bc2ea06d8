// What terraform's providers and provisioners can see: allowlisted credentials yes, Terrapin's secrets no.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { DEFAULT_TERRAFORM_ENV, secretEnvValues, selectTerraformEnv } from '../../activities/terraform-env.ts';
import { apply, plan } from '../../activities/terraform.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('selectTerraformEnv', () => {
  test('keeps variables matching the globs', () => {
    const env = { AWS_REGION: 'eu-west-1', AWS_SECRET_ACCESS_KEY: 'k', TF_VAR_x: '1', HTTPS_PROXY: 'p', HOSTNAME: 'h', NODE_OPTIONS: '--x' };
    expect(selectTerraformEnv(env, DEFAULT_TERRAFORM_ENV)).toEqual({ AWS_REGION: 'eu-west-1', AWS_SECRET_ACCESS_KEY: 'k', TF_VAR_x: '1', HTTPS_PROXY: 'p' });
  });

  test("never passes Terrapin's own credentials, even to a catch-all glob", () => {
    const env = { APP_ID: '1', PRIVATE_KEY: 'pem', PRIVATE_KEY_PATH: '/k', WEBHOOK_SECRET: 's', TEMPORAL_API_KEY: 'a', GITHUB_TOKEN: 't', OTHER: 'o' };
    expect(selectTerraformEnv(env, ['*'])).toEqual({ OTHER: 'o' });
  });
});

describe('terraform runs', () => {
  test('a provisioner sees allowlisted variables and none of the worker process secrets', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'terrapin-env-'));
    dirs.push(workDir);
    const dump = join(workDir, 'env.txt');
    await writeFile(
      join(workDir, 'main.tf'),
      `terraform {\n  backend "local" {\n    path = "${join(workDir, 'state.tfstate')}"\n  }\n}\n` +
        `variable "greeting" {}\n` +
        `resource "terraform_data" "dump" {\n  input = var.greeting\n  provisioner "local-exec" {\n    command = "env > ${dump}"\n  }\n}\n`,
    );
    const secrets = { WEBHOOK_SECRET: 'whsec-do-not-leak', PRIVATE_KEY: 'pem-do-not-leak', GITHUB_TOKEN: 'ghs_do_not_leak_0000000000000000' };
    const saved = { ...process.env };
    Object.assign(process.env, secrets);
    try {
      const passEnv = selectTerraformEnv({ ...process.env, AWS_REGION: 'eu-west-1', TF_VAR_greeting: 'hello' }, DEFAULT_TERRAFORM_ENV);
      const deps = { dataDir: workDir, passEnv };
      const planned = await plan({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform' }, deps);
      if (!planned.ok) throw new Error(await readFile(planned.outputFile, 'utf8'));
      const applied = await apply({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform', planFile: planned.planFile, expectedSha256: planned.planSha256 }, deps);
      expect(applied.ok).toBe(true);
    } finally {
      for (const k of Object.keys(secrets)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    const seen = await readFile(dump, 'utf8');
    expect(seen).toContain('AWS_REGION=eu-west-1');
    expect(seen).toContain('TF_VAR_greeting=hello');
    expect(seen).toContain('TF_IN_AUTOMATION=1');
    for (const value of Object.values(secrets)) expect(seen).not.toContain(value);
  });
  test('scrubs sensitive variables, sensitive outputs and credentials echoed by a local-exec from everything printed', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'terrapin-secrets-'));
    const password = 'hunter2-do-not-leak';
    const accessKey = 'AKIA-do-not-leak-0000';
    await writeFile(
      join(workDir, 'main.tf'),
      `terraform {\n  backend "local" {\n    path = "${join(workDir, 'state.tfstate')}"\n  }\n}\n` +
        `variable "db_password" {\n  sensitive = true\n}\n` +
        `resource "terraform_data" "db" {\n  input = var.db_password\n  provisioner "local-exec" {\n    command = "echo key=$AWS_SECRET_ACCESS_KEY pw=$TF_VAR_db_password"\n  }\n}\n` +
        `output "password" {\n  value     = var.db_password\n  sensitive = true\n}\n`,
    );
    const passEnv = selectTerraformEnv({ AWS_SECRET_ACCESS_KEY: accessKey, AWS_REGION: 'eu-west-1', TF_VAR_db_password: password }, DEFAULT_TERRAFORM_ENV);
    const deps = { dataDir: workDir, passEnv };
    const target = { workDir, projectDir: '.', workspace: 'default', binary: 'terraform' as const };
    const planned = await plan(target, deps);
    if (!planned.ok) throw new Error(await readFile(planned.outputFile, 'utf8'));
    const applied = await apply({ ...target, planFile: planned.planFile, expectedSha256: planned.planSha256 }, deps);
    expect(applied.ok).toBe(true);
    const printed = [await readFile(planned.planTextFile, 'utf8'), await readFile(planned.showJsonFile, 'utf8'), await readFile(applied.outputFile, 'utf8')].join('\n');
    // The provisioner did run and print (scrubbed), so the test would see a leak.
    expect(printed).toMatch(/key=\S+ pw=/);
    expect(printed).not.toContain(password);
    expect(printed).not.toContain(accessKey);
    // Not over-scrubbed: ordinary passed values stay readable.
    expect(secretEnvValues(passEnv).sort()).toEqual([accessKey, password].sort());
    await rm(workDir, { recursive: true, force: true });
  });
});
