// Outputs flow from project to project with real terraform: network → database → app. Sensitive
// outputs reach downstream plans as variables but never appear in what terraform prints.
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { OutputInput, ProjectTarget } from '../../shared/activity-contracts.ts';
import { apply, plan, readOutputs, type TerraformDeps } from '../../activities/terraform.ts';
import { testSandbox } from '../helpers/sandbox.ts';

const SECRET = 's3cr3t-pa55word';
let root: string;
/** State files outside every checkout, in a dir the operator lists in runner.paths. */
let states: string;
let deps: TerraformDeps;

const backend = (name: string) => `terraform {\n  backend "local" {\n    path = "${join(states, `${name}.tfstate`)}"\n  }\n}\n`;

const PROJECTS: Record<string, string> = {
  network: `
resource "terraform_data" "vpc" {
  input = "vpc-123"
}
variable "db_password" {
  type      = string
  default   = "${SECRET}"
  sensitive = true
}
output "vpc_id" {
  value = terraform_data.vpc.output
}
output "db_password" {
  value     = var.db_password
  sensitive = true
}
`,
  // db_password is deliberately not declared sensitive here: terraform would print it; Terrapin must not.
  database: `
variable "vpc_id" {}
variable "db_password" {}
resource "terraform_data" "db" {
  input = "\${var.vpc_id}/db/\${var.db_password}"
}
output "endpoint" {
  value = "db.\${var.vpc_id}"
}
`,
  app: `
variable "endpoint" {}
resource "terraform_data" "app" {
  input = var.endpoint
}
`,
};

const target = (name: string): ProjectTarget => ({ workDir: root, projectDir: name, workspace: 'default', binary: 'terraform' });

async function planAndApply(name: string, inputs: OutputInput[] = []) {
  const planned = await plan({ ...target(name), inputs }, deps);
  if (!planned.ok) throw new Error(await readFile(planned.outputFile, 'utf8'));
  const planText = await readFile(planned.planTextFile, 'utf8');
  const applied = await apply({ ...target(name), planFile: planned.planFile, expectedSha256: planned.planSha256, inputs }, deps);
  expect(applied.ok).toBe(true);
  return { planText, applyLog: await readFile(applied.outputFile, 'utf8'), outputsFile: applied.outputsFile! };
}

// Each test its own projects and state files: none reads what another applied.
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-outputs-'));
  states = await mkdtemp(join(tmpdir(), 'terrapin-outputs-state-'));
  deps = { dataDir: root, sandbox: testSandbox([states]) };
  for (const [name, body] of Object.entries(PROJECTS)) {
    await mkdir(join(root, name));
    await writeFile(join(root, name, 'main.tf'), backend(name) + body);
  }
});
afterEach(async () => {
  for (const dir of [root, `${root}.terrapin`, states]) await rm(dir, { recursive: true, force: true });
});

describe('outputs across three projects', () => {
  test('upstream outputs become downstream variables, sensitive ones never printed', async () => {
    const network = await planAndApply('network');
    expect((await stat(network.outputsFile)).mode & 0o777).toBe(0o600);
    const networkOutputs = JSON.parse(await readFile(network.outputsFile, 'utf8'));
    expect(networkOutputs).toMatchObject({ vpc_id: { value: 'vpc-123' }, db_password: { value: SECRET, sensitive: true } });

    const database = await planAndApply('database', [
      { variable: 'vpc_id', outputsFile: network.outputsFile, output: 'vpc_id', project: 'network' },
      { variable: 'db_password', outputsFile: network.outputsFile, output: 'db_password', project: 'network' },
    ]);
    expect(database.planText).toContain('vpc-123/db/[REDACTED]');
    expect(database.planText).not.toContain(SECRET);
    expect(database.applyLog).not.toContain(SECRET);

    const app = await planAndApply('app', [{ variable: 'endpoint', outputsFile: database.outputsFile, output: 'endpoint', project: 'database' }]);
    expect(app.planText).toContain('"db.vpc-123"');
    const appState = JSON.parse(await readFile(join(states, 'app.tfstate'), 'utf8'));
    expect(appState.resources[0].instances[0].attributes.input.value).toBe('db.vpc-123');
  });

  test("readOutputs gives a project's current outputs from its state, for plans before any apply", async () => {
    await planAndApply('network');
    const fresh = await mkdtemp(join(root, 'fresh-'));
    await mkdir(join(fresh, 'network'));
    await writeFile(join(fresh, 'network', 'main.tf'), backend('network') + PROJECTS.network);
    const { outputsFile } = await readOutputs({ ...target('network'), workDir: fresh }, deps);
    expect(JSON.parse(await readFile(outputsFile, 'utf8'))).toMatchObject({ vpc_id: { value: 'vpc-123' } });
  });

  test('a missing output is a clear plan error before terraform runs', async () => {
    const { outputsFile } = await readOutputs(target('network'), deps);
    const planned = await plan({ ...target('app'), inputs: [{ variable: 'endpoint', outputsFile, output: 'endpoint', project: 'network' }] }, deps);
    expect(planned).toMatchObject({ ok: false, step: 'inputs' });
    if (planned.ok) return;
    expect(await readFile(planned.outputFile, 'utf8')).toBe('Inputs: project network has no output "endpoint" (needed for variable "endpoint")\n');
  });
});
