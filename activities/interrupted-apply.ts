// After a worker died inside an apply: what became of it. The apply activity is never retried (a blind
// retry could apply twice); instead this waits for whatever of that apply still runs (the dead worker's
// orphaned terraform, its provisioners and hooks, then the state lock), plans again with the same inputs,
// and tells the workflow which of three things happened:
// - completed: the plan finds nothing left to do, where the approved plan had changes;
// - untouched: the plan proposes exactly the approved actions, the state is the one the apply started from
//   (same lineage and serial), and terraform's output shows it began no change: nothing was applied, the
//   fresh plan may be applied under the approval. (A terraform killed with its worker, by a node's end, may
//   have run a provisioner or created a resource without saving the state: its output says so.);
// - unknown: anything else, for a person to look at, with the fresh plan.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { heartbeatIfActivity } from './process.ts';
import { comparePlans } from './plan-compare.ts';
import { summarizePlan } from './plan-format.ts';
import { applyOutputFile, checkedPaths, currentStateIdentity, plan, runDataDir, stateBeforeFile, type TerraformDeps } from './terraform.ts';
import type { PlanInput, PlanResult, ProjectTarget } from '../shared/activity-contracts.ts';
import type { SavedPlan } from '../shared/runs.ts';

export interface InterruptedApplyInput {
  /** The interrupted apply's target (its label holds the approved plan and the state record). */
  interrupted: ProjectTarget;
  /** The hash of the plan the apply was running. */
  planSha256: string;
  /** The plan to make now: same inputs, its own label (so the approved plan's files stay as they were). */
  replan: PlanInput;
}

export type InterruptedApplyVerdict = 'completed' | 'untouched' | 'unknown';

export interface InterruptedApplyResult {
  verdict: InterruptedApplyVerdict;
  /** Why, in one sentence, for the log and the comment. */
  reason: string;
  /** The fresh plan (absent when planning failed: then failureFile says why). */
  plan?: SavedPlan;
  failureFile?: string;
}

/** How long the fresh plan waits for the state lock an orphaned apply may still hold. */
export const LOCK_TIMEOUT = '10m';
const POLL_MS = 500;

/** Processes (other than this one) whose environment holds `TF_DATA_DIR=<dir>`: the run's terraform and all it started. */
export async function processesOfRun(dataDir: string): Promise<number[]> {
  const needle = Buffer.from(`\0TF_DATA_DIR=${dataDir}\0`);
  const found: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    // Other users' processes (and ones gone meanwhile) cannot be read: they are not this worker's runs.
    const environ = await readFile(`/proc/${pid}/environ`).catch(() => undefined);
    if (environ && Buffer.concat([Buffer.from([0]), environ]).includes(needle)) found.push(pid);
  }
  return found;
}

/** Waits until no process of the run is left on this machine (a worker elsewhere is waited for by the state lock). */
export async function waitForRunToEnd(dataDir: string): Promise<void> {
  for (;;) {
    const left = await processesOfRun(dataDir);
    if (left.length === 0) return;
    heartbeatIfActivity({ waitingFor: left.length });
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** What terraform prints (with -no-color) as it starts to change a resource or runs a provisioner. */
const CHANGE_BEGAN = /^\S[^\n]*: (Creating|Modifying|Destroying|Importing|Provisioning with)\b/m;

/** Whether the interrupted apply's terraform began a change; no output file means terraform never started. */
async function changeBegan(outDir: string): Promise<boolean> {
  const output = await readFile(applyOutputFile(outDir), 'utf8').catch(() => undefined);
  return output !== undefined && CHANGE_BEGAN.test(output);
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

export async function resolveInterruptedApply(input: InterruptedApplyInput, deps: TerraformDeps): Promise<InterruptedApplyResult> {
  await waitForRunToEnd(await runDataDir(input.interrupted, deps));
  const checked = await checkedPaths(deps, input.interrupted);
  if (!checked.ok) return { verdict: 'unknown', reason: checked.message };
  const { outDir, planFile } = checked.paths;
  // The record and the approved plan's JSON live beside the plan file, made from it (plan() writes both).
  const before = (await readFile(stateBeforeFile(outDir), 'utf8').catch(() => '')).trim() || undefined;
  const approved = { showJsonFile: join(outDir, 'plan.json'), planTextFile: join(outDir, 'plan.diff.txt') };
  const approvedIntact = (await sha256(planFile).catch(() => '')) === input.planSha256;

  const made: PlanResult = await plan({ ...input.replan, extraArgs: [...(input.replan.extraArgs ?? []), `-lock-timeout=${LOCK_TIMEOUT}`] }, deps);
  if (!made.ok) return { verdict: 'unknown', reason: `planning again after the restart failed (${made.step})`, failureFile: made.outputFile };
  const { ok: _, ...fresh } = made;
  if (!approvedIntact) return { verdict: 'unknown', reason: 'the approved plan file is gone or changed, so it cannot be compared', plan: fresh };
  const approvedHadChanges = summarizePlan(JSON.parse(await readFile(approved.showJsonFile, 'utf8'))).hasChanges;
  if (approvedHadChanges && !fresh.summary.hasChanges) return { verdict: 'completed', reason: 'a plan after the restart finds nothing left to do', plan: fresh };
  const now = await currentStateIdentity(input.replan, deps);
  if (!before || !now) return { verdict: 'unknown', reason: 'the state as the apply began was not recorded, so an untouched state cannot be told', plan: fresh };
  if (before !== now) return { verdict: 'unknown', reason: 'the state changed since the apply began, and changes are still pending', plan: fresh };
  if (await changeBegan(outDir)) return { verdict: 'unknown', reason: 'terraform had begun changing resources, but the state does not show it', plan: fresh };
  const comparison = await comparePlans({ approved, current: fresh });
  if (!comparison.same) return { verdict: 'unknown', reason: `the plan now differs from the approved one: ${comparison.changes.join('; ')}`, plan: fresh };
  return { verdict: 'untouched', reason: 'the state is untouched and the approved changes are all still pending', plan: fresh };
}

export function createInterruptedApplyActivities(deps: TerraformDeps) {
  return { resolveInterruptedApply: (input: InterruptedApplyInput) => resolveInterruptedApply(input, deps) };
}

