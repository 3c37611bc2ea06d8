// terraform / tofu plan and apply. Large text goes to files, never through workflow history; apply only
// runs the exact plan file whose hash the workflow recorded.
// Files live OUTSIDE the checkout, in the bot dir <workDir>.terrapin/<project>--<workspace>[--label]/,
// which a pull request cannot create or redirect: plan-error.log, plan.json, plan.diff.txt, apply.log and
// outputs.json are the bot's alone; run/ (TF_DATA_DIR, the plan file, HOME) is what terraform and hooks
// may write. With an artifact store, a plan's file, text and JSON are also stored by sha256: an apply on
// a worker whose work dir is gone (or was never there) fetches the plan by its hash, so work dirs are a cache. Every terraform and hook command runs in the sandbox (sandbox.ts) with only the checkout, run/
// and the repository's provider cache writable.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, realpath, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
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
} from '../shared/activity-contracts.ts';
import { secretEnvValues } from './terraform-env.ts';
import type { GitDeps } from './git.ts';
import { detectDrift, type DriftInput } from './drift.ts';
import { formatPlanAsDiff, summarizePlan } from './plan-format.ts';
import { activityWorkflow, runCommand, type RunOptions, type RunResult } from './process.ts';
import { liveLogFile, PROJECT_RUN_WORKFLOW_TYPE } from '../shared/runs.ts';
import { loadInputs, saveOutputs } from './project-outputs.ts';
import { addBotFileSource, assertCheckoutFile, CheckoutFileError, checkoutDir, writeBotFile } from './checkout-files.ts';
import { binaryMount, findBinary, resolveSandbox, sandboxUnavailableMessage, wrapCommand, type Sandbox } from './sandbox.ts';
import { DEFAULT_OPERATOR_POLICY } from './operator-policy.ts';
import { ArtifactCorrupt, getToFile, putBotFile, putFile, type ArtifactStore } from './artifacts/index.ts';

export interface TerraformDeps {
  dataDir: string;
  /** Variables from the worker's environment passed to terraform (see terraform-env.ts). */
  passEnv?: Record<string, string>;
  /** How repository code runs (sandbox.ts), resolved once per worker; default: `auto` with no extra paths. */
  sandbox?: Sandbox | Promise<Sandbox>;
  /** Where plans go so that any worker can apply them; absent: this worker's files only. */
  artifacts?: ArtifactStore;
}

const BINARIES: readonly TerraformBinary[] = ['terraform', 'tofu'];
const WORKSPACE_NAME = /^[A-Za-z0-9_.-]+$/;

interface ProjectPaths {
  /** The checkout, symlinks resolved. */
  checkout: string;
  /** The project dir, symlinks resolved (inside the checkout). */
  projectDir: string;
  /** The bot's files for this project+workspace+label: only the bot writes here. */
  outDir: string;
  /** What terraform and hooks may write: TF_DATA_DIR, the plan file, HOME. */
  runDir: string;
  planFile: string;
  /** The repository's provider cache: one repository cannot plant providers for another. */
  pluginCache: string;
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'InvalidInput');
}

const LABEL = /^[A-Za-z0-9_.-]+$/;

/** The bot dir of a checkout: beside it, so nothing committed to the repository can stand in its place. */
export function botFilesDir(workDir: string): string {
  return `${resolve(workDir)}.terrapin`;
}

/** `<data>/plugin-cache/repos/<owner>/<repo>` for work dirs under `<data>/work`, else one per work dir's parent. */
function pluginCacheDir(dataDir: string, workDir: string): string {
  const rel = relative(join(resolve(dataDir), 'work'), resolve(workDir));
  const [owner, repo, ...rest] = rel.split(sep);
  if (owner && repo && rest.length > 0 && owner !== '..' && !isAbsolute(rel)) return join(dataDir, 'plugin-cache', 'repos', owner, repo);
  return join(dataDir, 'plugin-cache', 'paths', createHash('sha256').update(dirname(resolve(workDir))).digest('hex').slice(0, 16));
}

/** A directory the bot made for itself: created 0700, and refused if something else stands at its name. */
export async function botDir(path: string): Promise<string> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  const stats = await lstat(path);
  if (!stats.isDirectory()) throw ApplicationFailure.nonRetryable(`${path} is not a directory the bot made`, 'InvalidInput');
  return realpath(path);
}

/** The lexical checks and the bot's dirs; the project dir itself is checked by projectDirOf. */
async function projectPaths(workDir: string, projectDir: string, workspace: string, label?: string): Promise<Omit<ProjectPaths, 'projectDir' | 'pluginCache'> & { projectRel: string }> {
  const abs = resolve(workDir, projectDir);
  const rel = relative(resolve(workDir), abs);
  if (isAbsolute(projectDir) || rel.startsWith('..') || isAbsolute(rel)) {
    throw invalid(`Project dir escapes the work dir: ${projectDir}`);
  }
  if (!WORKSPACE_NAME.test(workspace)) throw invalid(`Invalid workspace name: ${workspace}`);
  const slug = (rel === '' ? 'root' : rel).replace(/[^A-Za-z0-9._-]+/g, '_');
  if (label !== undefined && !LABEL.test(label)) throw invalid(`Invalid label: ${label}`);
  const root = await botDir(botFilesDir(workDir));
  const outDir = await botDir(join(root, `${slug}--${workspace}${label ? `--${label}` : ''}`));
  const runDir = await botDir(join(outDir, 'run'));
  await botDir(join(runDir, 'home'));
  return { checkout: await realpath(workDir), projectRel: rel === '' ? '.' : rel.split(sep).join('/'), outDir, runDir, planFile: join(runDir, 'plan.tfplan') };
}

/** The project's paths, or (for a project dir that a symlink leads out of the checkout) the refusal and the bot dir to report it in. */
export async function checkedPaths(deps: TerraformDeps, target: ProjectTarget): Promise<{ ok: true; paths: ProjectPaths } | { ok: false; outDir: string; message: string }> {
  const base = await projectPaths(target.workDir, target.projectDir, target.workspace, target.label);
  let projectDir: string;
  try {
    projectDir = await checkoutDir(base.checkout, base.projectRel);
  } catch (err) {
    if (err instanceof CheckoutFileError) return { ok: false, outDir: base.outDir, message: `Project dir ${err.message}: terraform runs only in a directory of the repository.` };
    throw err;
  }
  return { ok: true, paths: { ...base, projectDir, pluginCache: await botDir(pluginCacheDir(deps.dataDir, target.workDir)) } };
}

async function fullPaths(deps: TerraformDeps, target: ProjectTarget): Promise<ProjectPaths> {
  const checked = await checkedPaths(deps, target);
  if (!checked.ok) throw invalid(checked.message);
  return checked.paths;
}

function terraformEnv(paths: ProjectPaths): Record<string, string> {
  return {
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    TF_PLUGIN_CACHE_DIR: paths.pluginCache,
    // Own .terraform per project+workspace: the selected workspace lives there.
    TF_DATA_DIR: join(paths.runDir, 'tf-data'),
  };
}

let defaultSandbox: Promise<Sandbox> | undefined;

/** The worker's sandbox (resolved once). */
export const sandboxOf = (deps: TerraformDeps): Promise<Sandbox> => Promise.resolve(deps.sandbox ?? (defaultSandbox ??= resolveSandbox(DEFAULT_OPERATOR_POLICY.runner)));

/** How this run's commands are started, or why repository code may not run at all. */
async function commandRunner(deps: TerraformDeps, paths: ProjectPaths, binary: TerraformBinary): Promise<{ ok: true; wrap?: RunOptions['wrap']; env: Record<string, string> } | { ok: false; message: string }> {
  const sandbox = await sandboxOf(deps);
  if (sandbox.kind === 'none') return { ok: true, env: {} };
  if (sandbox.kind === 'unavailable') return { ok: false, message: sandboxUnavailableMessage(sandbox.reason) };
  const run = { checkout: paths.checkout, runDir: paths.runDir, pluginCache: paths.pluginCache, readOnly: binaryMount(await findBinary(binary)) };
  return { ok: true, wrap: (command) => wrapCommand(sandbox, run, command), env: { HOME: join(paths.runDir, 'home') } };
}

function checkBinary(binary: string): TerraformBinary {
  if (!BINARIES.includes(binary as TerraformBinary)) throw invalid(`Unsupported binary: ${binary}`);
  return binary as TerraformBinary;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw new Error(`${path} is not a regular file`);
  }
  for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Saves what a command printed, headed by the command line, so a reader knows which step it was. */
async function saveOutput(file: string, commandLine: string, r: RunResult): Promise<string> {
  await writeBotFile(file, `$ ${commandLine}\n${r.output}\n${r.exitCode === 0 ? '' : `(exit code ${r.exitCode})\n`}`);
  return file;
}

/** Each -var-file must be a regular file inside the checkout: terraform would follow a symlink anywhere. */
async function checkVarFiles(paths: ProjectPaths, extraArgs: readonly string[]): Promise<string | undefined> {
  for (const arg of extraArgs) {
    const m = /^--?var-file=(.*)$/s.exec(arg);
    if (!m) continue;
    const rel = posix.join(relative(paths.checkout, paths.projectDir).split(sep).join('/') || '.', m[1]!);
    try {
      await assertCheckoutFile(paths.checkout, rel);
    } catch (err) {
      if (err instanceof CheckoutFileError) return `-var-file=${m[1]} refused: ${err.message}. A -var-file must be a regular file in the repository.`;
      throw err;
    }
  }
  return undefined;
}

export async function plan(input: PlanInput, deps: TerraformDeps): Promise<PlanResult> {
  const binary = checkBinary(input.binary);
  const checked = await checkedPaths(deps, input);
  const errorLog = join(checked.ok ? checked.paths.outDir : checked.outDir, 'plan-error.log');
  const refuse = async (step: PlanStep, message: string): Promise<PlanResult> => {
    await writeBotFile(errorLog, `${message}\n`);
    return { ok: false, step, outputFile: errorLog, exitCode: 1 };
  };
  if (!checked.ok) return refuse('init', checked.message);
  const paths = checked.paths;
  const runner = await commandRunner(deps, paths, binary);
  if (!runner.ok) return refuse('sandbox', runner.message);
  const inputs = await loadInputs(input.inputs);
  if (!inputs.ok) return refuse('inputs', `Inputs: ${inputs.error}`);
  const varFileRefusal = await checkVarFiles(paths, input.extraArgs ?? []);
  if (varFileRefusal) return refuse('plan', varFileRefusal);
  // The project's env first: it may not redirect Terrapin's own TF_* settings.
  const env = { ...input.env, ...deps.passEnv, ...runner.env, ...terraformEnv(paths), ...inputs.env };
  const secrets = [...inputs.secrets, ...secretEnvValues(deps.passEnv ?? {})];

  // What a person follows (`terrapin logs --follow`): hooks, init and plan; not the plan shown as JSON and text.
  const live = liveLogOf(deps);
  const run = (args: string[], follow = false) => runCommand(binary, args, { cwd: paths.projectDir, env, secrets, wrap: runner.wrap, ...(follow ? live : {}) });
  const planArg = relative(paths.projectDir, paths.planFile);
  const hooks = (commands: string[] | undefined) =>
    runHooks(commands ?? [], paths, { cwd: paths.projectDir, env: { ...env, ...input.hookEnv, PLANFILE: planArg }, secrets, wrap: runner.wrap, ...live });
  const hookFailure = async (step: 'prePlan' | 'postPlan', r: RunResult): Promise<PlanResult> => ({
    ok: false,
    step,
    outputFile: await saveOutput(errorLog, `${step} hooks`, r),
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
    outputFile: await saveOutput(errorLog, `${binary} ${args.join(' ')}`, r),
    exitCode: r.exitCode === 0 ? 1 : r.exitCode,
  });

  for (const args of steps) {
    const r = await run(args, true);
    if (r.exitCode !== 0) return fail(args, r);
  }

  // Both read the finished plan file and nothing else changes it: side by side, the second costs no wait.
  const jsonArgs = ['show', '-json', '-no-color', planArg];
  const textArgs = ['show', '-no-color', planArg];
  const [json, text] = await Promise.all([run(jsonArgs), run(textArgs)]);
  if (json.exitCode !== 0) return fail(jsonArgs, json);
  let showJson: unknown;
  try {
    showJson = JSON.parse(json.stdout);
  } catch {
    return fail(jsonArgs, { ...json, exitCode: 1, output: `${json.output}\nThe output is not valid JSON.` });
  }

  if (text.exitCode !== 0) return fail(textArgs, text);
  const planTextFile = join(paths.outDir, 'plan.diff.txt');
  await writeBotFile(planTextFile, formatPlanAsDiff(text.stdout.replace(/^\n+/, '').trimEnd()));
  // Mode 0600 (as every bot file): the JSON holds variable values, sensitive ones included.
  const showJsonFile = join(paths.outDir, 'plan.json');
  await writeBotFile(showJsonFile, json.stdout);
  // postPlan hooks are often policy checks: a failing one makes the plan fail.
  const after = await hooks(input.hooks?.after);
  if (after.exitCode !== 0) return hookFailure('postPlan', after);

  const planSha256 = await sha256File(paths.planFile);
  // Stored before the plan is reported: a plan a reviewer can approve is one any worker can apply.
  const stored = deps.artifacts
    ? { planTextSha256: await putBotFile(deps.artifacts, planTextFile), showJsonSha256: await putBotFile(deps.artifacts, showJsonFile) }
    : undefined;
  if (deps.artifacts && (await putFile(deps.artifacts, paths.planFile)) !== planSha256) {
    throw ApplicationFailure.retryable('the plan file changed while it was being stored', 'PlanChanged');
  }
  return {
    ok: true,
    planFile: paths.planFile,
    planSha256,
    summary: summarizePlan(showJson),
    planTextFile,
    showJsonFile,
    ...(stored ? { stored } : {}),
  };
}

/**
 * The approved plan in this run's run dir. The file there when it has the approved hash; when there is none
 * (a fresh work dir, another worker's plan, a work dir deleted as a cache), the approved bytes from the
 * artifact store, verified. A file there with another hash was changed after the plan: refused, never
 * replaced, so the PR is told and plans again.
 */
async function approvedPlanFile(deps: TerraformDeps, paths: ProjectPaths, input: ApplyInput): Promise<void> {
  const local = await sha256File(paths.planFile).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw ApplicationFailure.nonRetryable(`Plan file ${paths.planFile} cannot be read: ${err.message}`, 'PlanMissing');
  });
  // Without a store, only this run dir's own plan file: terraform runs there with the matching TF_DATA_DIR.
  // With one, the hash names the plan; the path may be another worker's.
  const named = await realpath(input.planFile).catch(() => input.planFile);
  if (!deps.artifacts && named !== paths.planFile) {
    throw ApplicationFailure.nonRetryable(`Plan file not found: ${input.planFile} is not this project's plan file (plan again)`, 'PlanMissing');
  }
  if (local === input.expectedSha256) return;
  if (local !== undefined) {
    throw ApplicationFailure.nonRetryable(`Plan file ${input.planFile} has sha256 ${local}, expected ${input.expectedSha256}`, 'PlanMismatch');
  }
  try {
    if (deps.artifacts && (await getToFile(deps.artifacts, input.expectedSha256, paths.planFile))) return;
  } catch (err) {
    if (err instanceof ArtifactCorrupt) throw ApplicationFailure.nonRetryable(`${err.message}; it is not applied (plan again)`, 'PlanMismatch');
    throw err;
  }
  throw ApplicationFailure.nonRetryable(`Plan file not found: ${input.planFile}`, 'PlanMissing');
}

export async function apply(input: ApplyInput, deps: TerraformDeps): Promise<ApplyResult> {
  const binary = checkBinary(input.binary);
  const paths = await fullPaths(deps, input);
  await approvedPlanFile(deps, paths, input);
  const runner = await commandRunner(deps, paths, binary);
  if (!runner.ok) throw ApplicationFailure.nonRetryable(runner.message, 'SandboxUnavailable');
  const env = { ...input.env, ...deps.passEnv, ...runner.env, ...terraformEnv(paths) };
  // The plan file carries the variable values; inputs only tell which values to keep out of the log.
  const inputs = await loadInputs(input.inputs);
  const secrets = [...(inputs.ok ? inputs.secrets : []), ...secretEnvValues(deps.passEnv ?? {})];
  const planArg = relative(paths.projectDir, paths.planFile);
  const live = liveLogOf(deps);
  const hookOpts = { cwd: paths.projectDir, env: { ...env, ...input.hookEnv, PLANFILE: planArg }, secrets, wrap: runner.wrap, ...live };
  const applyLog = join(paths.outDir, 'apply.log');
  // A work dir this worker did not plan in (re-created, or planned elsewhere) has no initialized TF_DATA_DIR:
  // init with the committed lock file, as the plan did, and select the plan's workspace.
  const init = await initIfMissing(binary, paths, input.workspace, { cwd: paths.projectDir, env, secrets, wrap: runner.wrap, ...live });
  if (init) return { ok: false, exitCode: init.exitCode, outputFile: await saveOutput(applyLog, `${binary} ${init.args.join(' ')}`, init) };
  // Before anything of the apply runs: should this worker die, the next one tells an untouched state
  // from a touched one by it (interrupted-apply.ts).
  await recordStateBefore(binary, paths, { cwd: paths.projectDir, env, secrets, wrap: runner.wrap });
  const before = await runHooks(input.hooks?.before ?? [], paths, hookOpts);
  if (before.exitCode !== 0) {
    // Nothing was applied: a failing preApply hook stops the project before terraform runs.
    return { ok: false, exitCode: before.exitCode, outputFile: await saveOutput(applyLog, 'preApply hooks', before) };
  }
  const args = ['apply', '-input=false', '-no-color', planArg];
  // Into a file, not a pipe: should this worker die, terraform finishes the apply and saves its state.
  const rawOutput = applyOutputFile(paths.outDir);
  const applied = await runCommand(binary, args, { cwd: paths.projectDir, env, secrets, killGraceMs: 60_000, wrap: runner.wrap, outputFile: rawOutput, ...live });
  // The scrubbed copy is what is kept (below); once the apply has ended, the raw one tells nobody anything.
  await rm(rawOutput, { force: true });
  // postApply hooks run after a successful apply; their output joins the log, their failure is noted
  // but cannot undo the apply.
  const after = applied.exitCode === 0 ? await runHooks(input.hooks?.after ?? [], paths, hookOpts) : undefined;
  const r = after?.output ? { ...applied, output: `${applied.output}\n${after.output}${after.exitCode ? `(postApply hooks failed with exit code ${after.exitCode})\n` : ''}` } : applied;
  const outputFile = await saveOutput(applyLog, `${binary} ${args.join(' ')}`, r);
  // The (scrubbed) log outlives the work dir.
  const logged = deps.artifacts ? { outputSha256: await putFile(deps.artifacts, outputFile) } : {};
  if (applied.exitCode !== 0) return { ok: false, exitCode: applied.exitCode, outputFile, ...logged };
  // Outputs are read after the apply's outcome is settled: failing to read them is reported as an
  // error of its own (retryable), never as a failed apply.
  return { ok: true, exitCode: 0, outputFile, ...logged, outputsFile: await writeOutputs(binary, paths, { cwd: paths.projectDir, env, secrets: [], wrap: runner.wrap }) };
}

/** The live log of the project run this activity belongs to (`terrapin logs --follow` reads it); none elsewhere. */
function liveLogOf(deps: TerraformDeps): { liveLog: string } | undefined {
  const workflow = activityWorkflow();
  return workflow?.type === PROJECT_RUN_WORKFLOW_TYPE ? { liveLog: liveLogFile(deps.dataDir, workflow.id) } : undefined;
}

/** `init` (and the workspace) when this run dir has no TF_DATA_DIR yet; the failed step, or undefined. */
async function initIfMissing(binary: TerraformBinary, paths: ProjectPaths, workspace: string, opts: RunOptions): Promise<(RunResult & { args: string[] }) | undefined> {
  if (await lstat(join(paths.runDir, 'tf-data')).then(() => true, () => false)) return undefined;
  const steps: string[][] = [['init', '-input=false', '-no-color']];
  if (workspace !== 'default') steps.push(['workspace', 'select', '-or-create=true', '-no-color', workspace]);
  for (const args of steps) {
    const r = await runCommand(binary, args, opts);
    if (r.exitCode !== 0) return { ...r, args };
  }
  return undefined;
}

/** Which state a project has: `lineage/serial` (every write bumps the serial), or `none` before the first apply. */
export type StateIdentity = string;

/** The state's identity now (`terraform state pull` takes no lock), or undefined when it cannot be read. */
async function stateIdentityOf(binary: TerraformBinary, opts: RunOptions): Promise<StateIdentity | undefined> {
  const r = await runCommand(binary, ['state', 'pull'], opts);
  if (r.exitCode !== 0) return undefined;
  if (!r.stdout.trim()) return 'none';
  try {
    const { lineage, serial } = JSON.parse(r.stdout) as { lineage?: unknown; serial?: unknown };
    return typeof lineage === 'string' && typeof serial === 'number' ? `${lineage}/${serial}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * terraform apply's output as it runs, unscrubbed, beside the plan file (which holds the same values):
 * present only while the apply runs, or after a worker died inside it (interrupted-apply.ts reads it).
 */
export const applyOutputFile = (outDir: string) => join(outDir, 'apply.output');

/** The file beside apply.log holding the state's identity as the apply began. */
export const stateBeforeFile = (outDir: string) => join(outDir, 'state-before.txt');

/** Best effort: without the record, an interrupted apply is never re-applied (nothing proves it untouched). */
async function recordStateBefore(binary: TerraformBinary, paths: ProjectPaths, opts: RunOptions): Promise<void> {
  const identity = await stateIdentityOf(binary, opts);
  if (identity) await writeBotFile(stateBeforeFile(paths.outDir), `${identity}\n`);
}

/** The project's state identity now, run with the target's own TF_DATA_DIR (already initialised by a plan). */
export async function currentStateIdentity(target: ProjectTarget, deps: TerraformDeps): Promise<StateIdentity | undefined> {
  const binary = checkBinary(target.binary);
  const paths = await fullPaths(deps, target);
  const runner = await commandRunner(deps, paths, binary);
  if (!runner.ok) return undefined;
  return stateIdentityOf(binary, { cwd: paths.projectDir, env: { ...deps.passEnv, ...runner.env, ...terraformEnv(paths) }, secrets: secretEnvValues(deps.passEnv ?? {}), wrap: runner.wrap });
}

/** TF_DATA_DIR of a project's run: every terraform, hook and provisioner of that run has it in its environment. */
export async function runDataDir(target: ProjectTarget, deps: TerraformDeps): Promise<string> {
  return terraformEnv(await fullPaths(deps, target)).TF_DATA_DIR;
}

/** A hook's first word naming a script in the repository (`./check.sh`, `scripts/x`): the script must be a file in the checkout. */
async function checkHookScript(paths: ProjectPaths, command: string): Promise<string | undefined> {
  const first = command.trimStart().split(/[\s;&|<>()]/)[0] ?? '';
  if (!first.includes('/') || first.startsWith('/') || /[$`'"*?~]/.test(first)) return undefined;
  const rel = posix.join(relative(paths.checkout, paths.projectDir).split(sep).join('/') || '.', first);
  try {
    await assertCheckoutFile(paths.checkout, rel, { maxBytes: 64 * 1024 * 1024 });
    return undefined;
  } catch (err) {
    if (err instanceof CheckoutFileError) return `hook script refused: ${err.message}. A hook script must be a regular file in the repository.\n`;
    throw err;
  }
}

/** Runs hook commands in order through `sh -c`; the first failure stops the rest. */
async function runHooks(commands: readonly string[], paths: ProjectPaths, opts: RunOptions): Promise<RunResult> {
  let output = '';
  for (const command of commands) {
    const refusal = await checkHookScript(paths, command);
    const r = refusal ? { exitCode: 126, output: refusal, stdout: '' } : await runCommand('sh', ['-c', command], opts);
    output += `$ ${command}\n${r.output}${r.output.endsWith('\n') || !r.output ? '' : '\n'}`;
    if (r.exitCode !== 0) return { exitCode: r.exitCode, output, stdout: '' };
  }
  return { exitCode: 0, output, stdout: '' };
}

async function writeOutputs(binary: TerraformBinary, paths: ProjectPaths, opts: RunOptions): Promise<string> {
  const r = await runCommand(binary, ['output', '-json', '-no-color'], opts);
  const file = join(paths.outDir, 'outputs.json');
  // Not scrubbed: these are the values. The file stays in the bot dir, mode 0600.
  if (r.exitCode !== 0 || !(await saveOutputs(file, r.stdout))) {
    throw ApplicationFailure.retryable(`terraform output failed (exit ${r.exitCode})`, 'OutputsUnavailable');
  }
  return file;
}

/** The project's current outputs (from its state), for downstream plans before anything is applied. */
export async function readOutputs(target: ProjectTarget, deps: TerraformDeps): Promise<OutputsResult> {
  const binary = checkBinary(target.binary);
  const paths = await fullPaths(deps, target);
  const runner = await commandRunner(deps, paths, binary);
  if (!runner.ok) throw ApplicationFailure.nonRetryable(runner.message, 'SandboxUnavailable');
  const opts: RunOptions = { cwd: paths.projectDir, env: { ...deps.passEnv, ...runner.env, ...terraformEnv(paths) }, secrets: secretEnvValues(deps.passEnv ?? {}), wrap: runner.wrap };
  const steps: string[][] = [['init', '-input=false', '-no-color']];
  if (target.workspace !== 'default') steps.push(['workspace', 'select', '-or-create=true', '-no-color', target.workspace]);
  for (const args of steps) {
    const r = await runCommand(binary, args, opts);
    if (r.exitCode !== 0) {
      throw ApplicationFailure.nonRetryable(`terraform ${args[0]} failed for ${target.projectDir}: ${r.output.trim().slice(-1000)}`, 'OutputsUnavailable');
    }
  }
  return { outputsFile: await writeOutputs(binary, paths, opts) };
}

export type TerrapinActivityDeps = GitDeps & Pick<TerraformDeps, 'passEnv' | 'sandbox' | 'artifacts'>;

/** The activity functions registered on the worker; each closes over the deps. */
export function createTerraformActivities(deps: TerrapinActivityDeps) {
  // Plan text and JSON another worker wrote (or a deleted work dir held) are read from the store by path.
  if (deps.artifacts) addBotFileSource(deps.artifacts);
  return {
    plan: (input: PlanInput) => plan(input, deps),
    apply: (input: ApplyInput) => apply(input, deps),
    readOutputs: (target: ProjectTarget) => readOutputs(target, deps),
    detectDrift: (input: DriftInput) => detectDrift(input, (p) => plan(p, deps)),
  };
}
