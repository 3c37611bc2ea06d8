// Policy checks: commands run against a plan's JSON (`terraform show -json`) after the plan, e.g. conftest,
// checkov or a script. Exit 0 passes; anything else fails, and the output is the findings. A check runs
// in the same sandbox as hooks (sandbox.ts), but sees less: the default branch's files read-only (never the
// PR's: a PR could rewrite the script), the plan JSON read-only, its own HOME, and none of the worker's or
// the project's environment (no credentials): a repository's check is repository code, and the plan JSON
// of a hostile change is its input.
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProjectTarget } from '../shared/activity-contracts.ts';
import type { PolicyCheck } from '../shared/config.ts';
import type { PolicyOutcome } from '../shared/runs.ts';
import { readBotFile, writeBotFile } from './checkout-files.ts';
import { runCommand, type RunOptions } from './process.ts';
import { sandboxUnavailableMessage, wrapCommand } from './sandbox.ts';
import { botDir, checkedPaths, sandboxOf, type TerraformDeps } from './terraform.ts';

export interface PolicyChecksInput extends ProjectTarget {
  /** The plan's `terraform show -json` (SavedPlan.showJsonFile). */
  showJsonFile: string;
  checks: PolicyCheck[];
  /** PROJECT, DIR, WORKSPACE: what the check is told besides PLAN_JSON. */
  env: Record<string, string>;
  /**
   * The work dir of the reviewed (default branch) commit: the check runs there and sees it read-only. The
   * PR's own checkout is never visible (a PR could otherwise rewrite a check's script). Absent: an empty dir.
   */
  filesFrom?: string;
}

/** Findings kept per check: enough to act on, small enough for a comment with several. */
export const FINDINGS_LIMIT = 6000;
const CHECK_TIMEOUT_MS = 10 * 60_000;

/** The text cut to `limit` characters, saying how much was left out. */
export function capFindings(text: string, limit = FINDINGS_LIMIT): string {
  const trimmed = text.replace(/\s+$/, '');
  if (trimmed.length <= limit) return trimmed;
  return `${trimmed.slice(0, limit)}\n… (${trimmed.length - limit} more characters cut)`;
}

/**
 * String values the plan marks sensitive (sensitive variables, sensitive attributes before and after,
 * sensitive outputs): a check could print them, and findings go to the PR.
 */
export function sensitiveValues(plan: unknown): string[] {
  const found = new Set<string>();
  const collect = (value: unknown, mask: unknown) => {
    if (mask === true) {
      const walk = (v: unknown) => {
        if (typeof v === 'string' && v.length >= 4) found.add(v);
        else if (typeof v === 'number' && String(v).length >= 4) found.add(String(v));
        else if (v && typeof v === 'object') Object.values(v).forEach(walk);
      };
      walk(value);
    } else if (mask && typeof mask === 'object' && value && typeof value === 'object') {
      for (const [k, m] of Object.entries(mask)) collect((value as Record<string, unknown>)[k], m);
    }
  };
  const p = (plan ?? {}) as Record<string, any>;
  const declared = p.configuration?.root_module?.variables ?? {};
  for (const [name, v] of Object.entries<any>(p.variables ?? {})) if (declared[name]?.sensitive) collect(v?.value, true);
  for (const rc of p.resource_changes ?? []) {
    collect(rc?.change?.after, rc?.change?.after_sensitive);
    collect(rc?.change?.before, rc?.change?.before_sensitive);
  }
  for (const oc of Object.values<any>(p.output_changes ?? {})) {
    collect(oc?.after, oc?.after_sensitive);
    collect(oc?.before, oc?.before_sensitive);
  }
  return [...found];
}

/** Runs every check (all of them, so the PR sees every finding at once) and saves each one's findings. */
export async function runPolicyChecks(input: PolicyChecksInput, deps: TerraformDeps): Promise<PolicyOutcome[]> {
  const checked = await checkedPaths(deps, input);
  if (!checked.ok) return Promise.all(input.checks.map((c) => refused(checked.outDir, c, checked.message)));
  const { paths } = checked;
  const dir = await botDir(join(paths.outDir, 'policy'));
  const home = await botDir(join(dir, 'home'));
  const cwd = input.filesFrom ? await realpath(input.filesFrom) : await botDir(join(dir, 'files'));
  const sandbox = await sandboxOf(deps);
  if (sandbox.kind === 'unavailable') return Promise.all(input.checks.map((c) => refused(dir, c, sandboxUnavailableMessage(sandbox.reason))));
  // readBotFile: on a worker without this file it comes from the artifact store, put back where PLAN_JSON points.
  const secrets = sensitiveValues(JSON.parse(await readBotFile(input.showJsonFile)));
  const wrap: RunOptions['wrap'] =
    sandbox.kind === 'bubblewrap'
      ? (command) => wrapCommand(sandbox, { checkout: cwd, checkoutReadOnly: true, runDir: home, readOnly: [input.showJsonFile] }, command)
      : undefined;
  const outcomes: PolicyOutcome[] = [];
  for (const check of input.checks) {
    const env = { ...input.env, HOME: home, PLAN_JSON: input.showJsonFile };
    // From the reviewed repository root: a check looks at the plan of any of its projects (DIR says which).
    const r = await runCommand('sh', ['-c', check.run], { cwd, env, secrets, wrap, timeoutMs: CHECK_TIMEOUT_MS });
    const passed = r.exitCode === 0;
    const text = capFindings(r.output) || '(no output)';
    const findingsFile = join(dir, `${check.name}.txt`);
    await writeBotFile(findingsFile, `${text}\n${passed ? '' : `(exit code ${r.exitCode})\n`}`);
    outcomes.push({ name: check.name, passed, findingsFile, exitCode: r.exitCode });
  }
  return outcomes;
}

/** A check that could not run fails, with the reason as its findings. */
async function refused(dir: string, check: PolicyCheck, message: string): Promise<PolicyOutcome> {
  const findingsFile = join(dir, `${check.name}.txt`);
  await writeBotFile(findingsFile, `${message}\n`);
  return { name: check.name, passed: false, findingsFile };
}

export function createPolicyCheckActivities(deps: TerraformDeps) {
  return { runPolicyChecks: (input: PolicyChecksInput) => runPolicyChecks(input, deps) };
}
