// terraform / tofu plan and apply. Large text goes to files in <workDir>/.terrapin/<project>--<workspace>/,
// never through workflow history. Apply only runs the exact plan file whose hash the workflow recorded.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type {
  ApplyInput,
  ApplyResult,
  OutputsResult,
  PlanInput,
  PlanResult,
  PlanStep,
  ProjectTarget,
  TerraformBinary,
} from './contracts.ts';
import { secretEnvValues } from './terraform-env.ts';
import { checkout, removeWorkDirs, revisionFacts, type GitDeps, type RevisionFactsInput } from './git.ts';
import { detectDrift, type DriftInput } from './drift.ts';
import { formatPlanAsDiff, summarizePlan } from './plan-format.ts';
import { runCommand, type RunResult } from './process.ts';
import { loadInputs, saveOutputs } from './project-outputs.ts';

export interface TerraformDeps {
  dataDir: string;
  /** Variables from the worker's environment passed to terraform (see terraform-env.ts). */
  passEnv?: Record<string, string>;
}

const BINARIES: readonly TerraformBinary[] = ['terraform', 'tofu'];
const WORKSPACE_NAME = /^[A-Za-z0-9_.-]+$/;

interface ProjectPaths {
  projectDir: string;
  /** Per project and workspace, so concurrent plans in one work dir never share files. */
  outDir: string;
  planFile: string;
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'InvalidInput');
}

const LABEL = /^[A-Za-z0-9_.-]+$/;

function projectPaths(workDir: string, projectDir: string, workspace: string, label?: string): ProjectPaths {
  const abs = resolve(workDir, projectDir);
  const rel = relative(workDir, abs);
  if (isAbsolute(projectDir) || rel.startsWith('..') || isAbsolute(rel)) {
    throw invalid(`Project dir escapes the work dir: ${projectDir}`);
  }
  if (!WORKSPACE_NAME.test(workspace)) throw invalid(`Invalid workspace name: ${workspace}`);
  const slug = (rel === '' ? 'root' : rel).replace(/[^A-Za-z0-9._-]+/g, '_');
  if (label !== undefined && !LABEL.test(label)) throw invalid(`Invalid label: ${label}`);
  const outDir = join(workDir, '.terrapin', `${slug}--${workspace}${label ? `--${label}` : ''}`);
  return { projectDir: abs, outDir, planFile: join(outDir, 'plan.tfplan') };
}

function terraformEnv({ dataDir, passEnv = {} }: TerraformDeps, paths: ProjectPaths): Record<string, string> {
  return {
    ...passEnv,
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    TF_PLUGIN_CACHE_DIR: join(dataDir, 'plugin-cache'),
    // Own .terraform per project+workspace: the selected workspace lives there.
    TF_DATA_DIR: join(paths.outDir, 'tf-data'),
  };
}

function checkBinary(binary: string): TerraformBinary {
  if (!BINARIES.includes(binary as TerraformBinary)) throw invalid(`Unsupported binary: ${binary}`);
  return binary as TerraformBinary;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Saves what a command printed, headed by the command line, so a reader knows which step it was. */
async function saveOutput(file: string, commandLine: string, r: RunResult): Promise<string> {
  await writeFile(file, `$ ${commandLine}\n${r.output}\n${r.exitCode === 0 ? '' : `(exit code ${r.exitCode})\n`}`);
  return file;
}

export async function plan(input: PlanInput, deps: TerraformDeps): Promise<PlanResult> {
  const binary = checkBinary(input.binary);
  const paths = projectPaths(input.workDir, input.projectDir, input.workspace, input.label);
  await mkdir(paths.outDir, { recursive: true });
  const inputs = await loadInputs(input.inputs);
  if (!inputs.ok) {
    const outputFile = join(paths.outDir, 'plan-error.log');
    await writeFile(outputFile, `Inputs: ${inputs.error}\n`);
    return { ok: false, step: 'inputs', outputFile, exitCode: 1 };
  }
  // The project's env first: it may not redirect Terrapin's own TF_* settings.
  const env = { ...input.env, ...terraformEnv(deps, paths), ...inputs.env };
  await mkdir(env.TF_PLUGIN_CACHE_DIR!, { recursive: true });

  const run = (args: string[]) => runCommand(binary, args, { cwd: paths.projectDir, env, secrets: [...inputs.secrets, ...secretEnvValues(deps.passEnv ?? {})] });
  const planArg = relative(paths.projectDir, paths.planFile);
  const hooks = (commands: string[] | undefined) =>
    runHooks(commands ?? [], { cwd: paths.projectDir, env: { ...env, ...input.hookEnv, PLANFILE: planArg }, secrets: [...inputs.secrets, ...secretEnvValues(deps.passEnv ?? {})] });
  const hookFailure = async (step: 'prePlan' | 'postPlan', r: RunResult): Promise<PlanResult> => ({
    ok: false,
    step,
    outputFile: await saveOutput(join(paths.outDir, 'plan-error.log'), `${step} hooks`, r),
    exitCode: r.exitCode,
  });
  const before = await hooks(input.hooks?.before);
  if (before.exitCode !== 0) return hookFailure('prePlan', before);
  const steps: string[][] = [['init', '-input=false', '-no-color']];
  if (input.workspace !== 'default') {
    steps.push(['workspace', 'select', '-or-create=true', '-no-color', input.workspace]);
  }
  // Paths relative to the project dir: terraform echoes them, and comments should not show server paths.
  steps.push(['plan', '-input=false', '-no-color', ...(input.extraArgs ?? []), `-out=${planArg}`]);

  const fail = async (args: string[], r: RunResult): Promise<PlanResult> => ({
    ok: false,
    step: args[0] as PlanStep,
    outputFile: await saveOutput(join(paths.outDir, 'plan-error.log'), `${binary} ${args.join(' ')}`, r),
    exitCode: r.exitCode === 0 ? 1 : r.exitCode,
  });

  for (const args of steps) {
    const r = await run(args);
    if (r.exitCode !== 0) return fail(args, r);
  }

  const jsonArgs = ['show', '-json', '-no-color', planArg];
  const json = await run(jsonArgs);
  if (json.exitCode !== 0) return fail(jsonArgs, json);
  let showJson: unknown;
  try {
    showJson = JSON.parse(json.stdout);
  } catch {
    return fail(jsonArgs, { ...json, exitCode: 1, output: `${json.output}\nThe output is not valid JSON.` });
  }

  const textArgs = ['show', '-no-color', planArg];
  const text = await run(textArgs);
  if (text.exitCode !== 0) return fail(textArgs, text);
  const planTextFile = join(paths.outDir, 'plan.diff.txt');
  await writeFile(planTextFile, formatPlanAsDiff(text.stdout.replace(/^\n+/, '').trimEnd()));
  // Mode 0600: the JSON holds variable values, sensitive ones included.
  const showJsonFile = join(paths.outDir, 'plan.json');
  await writeFile(showJsonFile, json.stdout, { mode: 0o600 });
  // postPlan hooks are often policy checks: a failing one makes the plan fail.
  const after = await hooks(input.hooks?.after);
  if (after.exitCode !== 0) return hookFailure('postPlan', after);

  return {
    ok: true,
    planFile: paths.planFile,
    planSha256: await sha256File(paths.planFile),
    summary: summarizePlan(showJson),
    planTextFile,
    showJsonFile,
  };
}

export async function apply(input: ApplyInput, deps: TerraformDeps): Promise<ApplyResult> {
  const binary = checkBinary(input.binary);
  const paths = projectPaths(input.workDir, input.projectDir, input.workspace, input.label);
  let actual: string;
  try {
    actual = await sha256File(input.planFile);
  } catch {
    throw ApplicationFailure.nonRetryable(`Plan file not found: ${input.planFile}`, 'PlanMissing');
  }
  if (actual !== input.expectedSha256) {
    throw ApplicationFailure.nonRetryable(
      `Plan file ${input.planFile} has sha256 ${actual}, expected ${input.expectedSha256}`,
      'PlanMismatch',
    );
  }
  const env = { ...input.env, ...terraformEnv(deps, paths) };
  // The plan file carries the variable values; inputs only tell which values to keep out of the log.
  const inputs = await loadInputs(input.inputs);
  const secrets = [...(inputs.ok ? inputs.secrets : []), ...secretEnvValues(deps.passEnv ?? {})];
  const planArg = relative(paths.projectDir, input.planFile);
  const hookOpts = { cwd: paths.projectDir, env: { ...env, ...input.hookEnv, PLANFILE: planArg }, secrets };
  const before = await runHooks(input.hooks?.before ?? [], hookOpts);
  if (before.exitCode !== 0) {
    // Nothing was applied: a failing preApply hook stops the project before terraform runs.
    return { ok: false, exitCode: before.exitCode, outputFile: await saveOutput(join(paths.outDir, 'apply.log'), 'preApply hooks', before) };
  }
  const args = ['apply', '-input=false', '-no-color', planArg];
  const applied = await runCommand(binary, args, { cwd: paths.projectDir, env, secrets, killGraceMs: 60_000 });
  // postApply hooks run after a successful apply; their output joins the log, their failure is noted
  // but cannot undo the apply.
  const after = applied.exitCode === 0 ? await runHooks(input.hooks?.after ?? [], hookOpts) : undefined;
  const r = after?.output ? { ...applied, output: `${applied.output}\n${after.output}${after.exitCode ? `(postApply hooks failed with exit code ${after.exitCode})\n` : ''}` } : applied;
  const outputFile = await saveOutput(join(paths.outDir, 'apply.log'), `${binary} ${args.join(' ')}`, r);
  if (applied.exitCode !== 0) return { ok: false, exitCode: applied.exitCode, outputFile };
  // Outputs are read after the apply's outcome is settled: failing to read them is reported as an
  // error of its own (retryable), never as a failed apply.
  return { ok: true, exitCode: 0, outputFile, outputsFile: await writeOutputs(binary, paths, env) };
}

/** Runs hook commands in order through `sh -c`; the first failure stops the rest. */
async function runHooks(commands: readonly string[], opts: { cwd: string; env: Record<string, string>; secrets: readonly string[] }): Promise<RunResult> {
  let output = '';
  for (const command of commands) {
    const r = await runCommand('sh', ['-c', command], opts);
    output += `$ ${command}\n${r.output}${r.output.endsWith('\n') || !r.output ? '' : '\n'}`;
    if (r.exitCode !== 0) return { exitCode: r.exitCode, output, stdout: '' };
  }
  return { exitCode: 0, output, stdout: '' };
}

async function writeOutputs(binary: TerraformBinary, paths: ProjectPaths, env: Record<string, string>): Promise<string> {
  const r = await runCommand(binary, ['output', '-json', '-no-color'], { cwd: paths.projectDir, env, secrets: [] });
  const file = join(paths.outDir, 'outputs.json');
  // Not scrubbed: these are the values. The file stays in the data dir, mode 0600.
  if (r.exitCode !== 0 || !(await saveOutputs(file, r.stdout))) {
    throw ApplicationFailure.retryable(`terraform output failed (exit ${r.exitCode})`, 'OutputsUnavailable');
  }
  return file;
}

/** The project's current outputs (from its state), for downstream plans before anything is applied. */
export async function readOutputs(target: ProjectTarget, deps: TerraformDeps): Promise<OutputsResult> {
  const binary = checkBinary(target.binary);
  const paths = projectPaths(target.workDir, target.projectDir, target.workspace, target.label);
  await mkdir(paths.outDir, { recursive: true });
  const env = terraformEnv(deps, paths);
  await mkdir(env.TF_PLUGIN_CACHE_DIR!, { recursive: true });
  const steps: string[][] = [['init', '-input=false', '-no-color']];
  if (target.workspace !== 'default') steps.push(['workspace', 'select', '-or-create=true', '-no-color', target.workspace]);
  for (const args of steps) {
    const r = await runCommand(binary, args, { cwd: paths.projectDir, env });
    if (r.exitCode !== 0) {
      throw ApplicationFailure.nonRetryable(`terraform ${args[0]} failed for ${target.projectDir}: ${r.output.trim().slice(-1000)}`, 'OutputsUnavailable');
    }
  }
  return { outputsFile: await writeOutputs(binary, paths, env) };
}

export type TerrapinActivityDeps = GitDeps & Pick<TerraformDeps, 'passEnv'>;

/** The activity functions registered on the worker; each closes over the deps. */
export function createTerraformActivities(deps: TerrapinActivityDeps) {
  return {
    checkout: (input: Parameters<typeof checkout>[0]) => checkout(input, deps),
    removeWorkDirs: (input: Parameters<typeof removeWorkDirs>[0]) => removeWorkDirs(input, deps),
    revisionFacts: (input: RevisionFactsInput) => revisionFacts(input, deps),
    plan: (input: PlanInput) => plan(input, deps),
    apply: (input: ApplyInput) => apply(input, deps),
    readOutputs: (target: ProjectTarget) => readOutputs(target, deps),
    detectDrift: (input: DriftInput) => detectDrift(input, deps),
  };
}
