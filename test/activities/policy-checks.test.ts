// Policy checks against real plans (real terraform), run in the real sandbox: checkov with a custom
// policy, and shell scripts. checkov must be installed (.ci/run does it): TERRAPIN_CHECKOV or PATH.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { plan } from '../../activities/terraform.ts';
import { capFindings, runPolicyChecks, sensitiveValues } from '../../activities/policy-checks.ts';
import { resolveSandbox, type Sandbox } from '../../activities/sandbox.ts';
import { findCheckov } from '../helpers/checkov.ts';

let root: string;
/** The reviewed (default branch) checkout the checks run in; `root` is the PR's. */
let reviewed: string;
let sandbox: Promise<Sandbox>;
let checkov: string | undefined;
/** Why checkov could not be found: its test fails with this (never skips). */
let checkovMissing: string | undefined;

const deps = () => ({ dataDir: root, sandbox, passEnv: { AWS_SECRET_ACCESS_KEY: 'worker-secret-value-1234' } });
const target = (label: string) => ({ workDir: root, projectDir: 'infra', workspace: 'default', binary: 'terraform' as const, label });
const env = { PROJECT: 'infra', DIR: 'infra', WORKSPACE: 'default' };
const files = () => ({ filesFrom: reviewed });

async function planned(label: string, vars: Record<string, string>) {
  const made = await plan({ ...target(label), env: Object.fromEntries(Object.entries(vars).map(([k, v]) => [`TF_VAR_${k}`, v])) }, deps());
  if (!made.ok) throw new Error(`plan failed: ${await readFile(made.outputFile, 'utf8')}`);
  return made;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'terrapin-policy-'));
  const found = await findCheckov().catch((err: Error) => {
    checkovMissing = err.message;
    return undefined;
  });
  checkov = found?.bin;
  // The operator lists checkov's dirs in runner.paths, read-only, as for any host tool.
  sandbox = resolveSandbox({ sandbox: 'auto', paths: (found?.dirs ?? []).map((path) => ({ path, writable: false })) });
  reviewed = await mkdtemp(join(tmpdir(), 'terrapin-policy-reviewed-'));
  await mkdir(join(root, 'infra'));
  await mkdir(join(reviewed, 'policies'));
  await writeFile(
    join(root, 'infra', 'main.tf'),
    [
      `terraform {\n  backend "local" {\n    path = "${join(root, 'state.tfstate')}"\n  }\n}`,
      'variable "greeting" {}',
      'variable "token" {\n  sensitive = true\n  default = "s3cr3t-token-value"\n}',
      'resource "terraform_data" "a" {\n  input = var.greeting\n}',
      'resource "terraform_data" "t" {\n  input = var.token\n}',
    ].join('\n'),
  );
  await writeFile(
    join(reviewed, 'policies', 'no_hello.yaml'),
    [
      'metadata:',
      '  id: "CKV2_TERRAPIN_1"',
      '  name: "terraform_data must not say hello"',
      '  category: "GENERAL_SECURITY"',
      'definition:',
      '  cond_type: "attribute"',
      '  resource_types: ["terraform_data"]',
      '  attribute: "input"',
      '  operator: "not_equals"',
      '  value: "hello"',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(reviewed, { recursive: true, force: true });
  await rm(`${root}.terrapin`, { recursive: true, force: true });
});

describe('policy checks', () => {
  const checkovRun = () =>
    `${checkov} -f "$PLAN_JSON" --framework terraform_plan --external-checks-dir policies --check CKV2_TERRAPIN_1 --compact --quiet --skip-download`;

  test('checkov with a custom policy fails a plan that breaks it, with its findings, and passes one that does not', async () => {
    if (checkovMissing) throw new Error(checkovMissing);
    const bad = await planned('ckv-bad', { greeting: 'hello' });
    const [failed] = await runPolicyChecks({ ...target('ckv-bad'), showJsonFile: bad.showJsonFile, env, ...files(), checks: [{ name: 'checkov', run: checkovRun(), projects: ['*'] }] }, deps());
    const findings = await readFile(failed!.findingsFile!, 'utf8');
    expect(failed).toMatchObject({ name: 'checkov', passed: false, exitCode: 1 });
    expect(findings).toContain('CKV2_TERRAPIN_1');
    expect(findings).toContain('FAILED for resource: terraform_data.a');

    const good = await planned('ckv-good', { greeting: 'bonjour' });
    const [passed] = await runPolicyChecks({ ...target('ckv-good'), showJsonFile: good.showJsonFile, env, ...files(), checks: [{ name: 'checkov', run: checkovRun(), projects: ['*'] }] }, deps());
    expect(passed).toMatchObject({ passed: true, exitCode: 0 });
    expect(await readFile(passed!.findingsFile!, 'utf8')).toContain('Passed checks: 2, Failed checks: 0');
  }, 120_000);

  test('a script that fails only on destroys; every check runs, each with its own verdict', async () => {
    const noDestroy = { name: 'no-destroy', run: 'if grep -q \'"delete"\' "$PLAN_JSON"; then echo "destroys in $PROJECT ($DIR, $WORKSPACE)"; exit 2; fi; echo "no destroys"', projects: ['*'] };
    const alwaysFails = { name: 'always-fails', run: 'echo nope; exit 1', projects: ['*'] };
    const create = await planned('create', { greeting: 'one' });
    const onCreate = await runPolicyChecks({ ...target('create'), showJsonFile: create.showJsonFile, env, checks: [alwaysFails, noDestroy] }, deps());
    expect(onCreate.map((r) => [r.name, r.passed])).toEqual([['always-fails', false], ['no-destroy', true]]);

    // Applied by hand, so that a destroy plan has something to destroy.
    const tf = (args: string[]) => execFileSync('terraform', args, { cwd: join(root, 'infra'), env: { ...process.env, TF_DATA_DIR: join(root, 'tf-data') }, stdio: 'ignore' });
    tf(['init', '-input=false']);
    tf(['apply', '-auto-approve', '-input=false', '-var', 'greeting=one']);
    const destroy = await plan({ ...target('destroy'), env: { TF_VAR_greeting: 'one' }, extraArgs: ['-destroy'] }, deps());
    if (!destroy.ok) throw new Error('destroy plan failed');
    expect(destroy.summary.destroy).toBe(2);
    const [onDestroy] = await runPolicyChecks({ ...target('destroy'), showJsonFile: destroy.showJsonFile, env, checks: [noDestroy] }, deps());
    expect(onDestroy).toMatchObject({ passed: false, exitCode: 2 });
    expect(await readFile(onDestroy!.findingsFile!, 'utf8')).toBe('destroys in infra (infra, default)\n(exit code 2)\n');
  }, 120_000);

  test('a check gets no credentials or environment of the worker, sees only the reviewed files (read-only) and the plan JSON, and its findings hide sensitive values', async () => {
    process.env.TERRAPIN_POLICY_TEST_SECRET = 'from-the-worker-environment';
    try {
      const made = await planned('env', { greeting: 'hi' });
      const snoop = {
        name: 'snoop',
        run: `env | sort; cat "$PLAN_JSON"; touch policies/planted && echo WROTE; cat ${root}/infra/main.tf 2>&1; ls "$(dirname "$PLAN_JSON")/run" 2>&1; cat /proc/1/environ 2>/dev/null | tr "\\0" "\\n"; exit 0`,
        projects: ['*'],
      };
      const [r] = await runPolicyChecks({ ...target('env'), showJsonFile: made.showJsonFile, env, checks: [snoop], ...files() }, deps());
      const out = await readFile(r!.findingsFile!, 'utf8');
      expect(out).toContain(`PLAN_JSON=${made.showJsonFile}`);
      expect(out).toContain('PROJECT=infra');
      expect(out).not.toContain('worker-secret-value-1234');
      expect(out).not.toContain('from-the-worker-environment');
      expect(out).not.toContain('AWS_SECRET_ACCESS_KEY');
      expect(out).not.toContain('TF_VAR_');
      // The reviewed files are read-only; the PR's checkout and terraform's run dir are not there at all.
      expect(out).not.toContain('WROTE');
      expect(out).toContain(`cat: ${root}/infra/main.tf: No such file or directory`);
      expect(out).toMatch(/ls: cannot access '.*\/run': No such file or directory/);
      expect(out).not.toContain('resource "terraform_data"');
      // The sensitive variable's value is in the plan JSON; the findings show it redacted.
      expect(await readFile(made.showJsonFile, 'utf8')).toContain('s3cr3t-token-value');
      expect(out).not.toContain('s3cr3t-token-value');
      expect(out).toContain('[REDACTED]');
    } finally {
      delete process.env.TERRAPIN_POLICY_TEST_SECRET;
    }
  }, 60_000);
});

describe('findings', () => {
  test('are cut to the limit with a note of how much was cut', () => {
    expect(capFindings('abc\n\n', 10)).toBe('abc');
    expect(capFindings('x'.repeat(15), 10)).toBe(`${'x'.repeat(10)}\n… (5 more characters cut)`);
  });

  test('sensitive values are found in variables, resource attributes and outputs', () => {
    const planJson = {
      configuration: { root_module: { variables: { pw: { sensitive: true }, open: {} } } },
      variables: { pw: { value: 'hunter22' }, open: { value: 'visible' } },
      resource_changes: [{ change: { after: { input: { a: 'nested-secret', b: 'plain' } }, after_sensitive: { input: { a: true } }, before: null, before_sensitive: false } }],
      output_changes: { o: { after: 'out-secret', after_sensitive: true } },
    };
    expect(sensitiveValues(planJson).sort()).toEqual(['hunter22', 'nested-secret', 'out-secret']);
  });
});
