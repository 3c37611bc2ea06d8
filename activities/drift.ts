// Drift detection: does the default branch's code still describe what is deployed?
// Two plans, because neither alone sees everything: a refresh-only plan reports objects changed outside
// terraform (resource_drift), while drift that only lives in the state (terraform_data) shows up solely
// as a change in a normal plan. Both go through plan(), each with its own label, so their files, locks on
// .terraform and plan files stay apart and the normal plan can later be applied to reconcile.
// The plan function is given (terraform.ts registers detectDrift with its own), so this module does not
// import terraform.ts, which imports it.
import { readBotFile } from './checkout-files.ts';
import type { OutputInput, PlanInput, PlanResult, PlanStep, PlanSummary, ProjectTarget } from '../shared/activity-contracts.ts';

export interface DriftInput extends ProjectTarget {
  /** The project's `env` from .terrapin.yml. */
  env?: Record<string, string>;
  inputs?: OutputInput[];
}

export interface DriftChecked {
  drifted: boolean;
  /** Addresses that drifted (refresh-only) or that a normal plan would change, sorted, no repeats. */
  resources: string[];
  refreshOnly: { changed: boolean; textFile: string };
  /** The normal plan: applying planFile (hash planSha256) brings the infrastructure back to the code. */
  plan: { changed: boolean; textFile: string; summary: PlanSummary; planFile: string; planSha256: string };
  error?: undefined;
}

export interface DriftFailed {
  drifted: false;
  resources: [];
  error: { step: PlanStep; outputFile: string };
}

export type DriftReport = DriftChecked | DriftFailed;

interface ShowJson {
  resource_drift?: Array<{ address?: string; change?: { actions?: string[] } }>;
  resource_changes?: Array<{ address?: string; change?: { actions?: string[] } }>;
}

/** Addresses whose actions do something: 'no-op' and 'read' leave the infrastructure as it is. */
function changedAddresses(entries: ShowJson['resource_drift']): string[] {
  return (entries ?? [])
    .filter((e) => e.address && (e.change?.actions ?? []).some((a) => a !== 'no-op' && a !== 'read'))
    .map((e) => e.address!);
}

async function readShowJson(file: string): Promise<ShowJson> {
  return JSON.parse(await readBotFile(file)) as ShowJson;
}

/** Runs one plan of the project (terraform.ts's plan, with the worker's deps). */
export type PlanRunner = (input: PlanInput) => Promise<PlanResult>;

export async function detectDrift(input: DriftInput, plan: PlanRunner): Promise<DriftReport> {
  const base = input.label ?? 'drift';
  const failed = (r: Extract<PlanResult, { ok: false }>): DriftFailed => ({
    drifted: false,
    resources: [],
    error: { step: r.step, outputFile: r.outputFile },
  });
  // One after the other: both take the state lock.
  const refresh = await plan({ ...input, label: `${base}-refresh`, extraArgs: ['-refresh-only'] });
  if (!refresh.ok) return failed(refresh);
  const normal = await plan({ ...input, label: `${base}-plan` });
  if (!normal.ok) return failed(normal);

  const drift = changedAddresses((await readShowJson(refresh.showJsonFile)).resource_drift);
  const changes = changedAddresses((await readShowJson(normal.showJsonFile)).resource_changes);
  const resources = [...new Set([...drift, ...changes])].sort();
  return {
    drifted: drift.length > 0 || normal.summary.hasChanges,
    resources,
    refreshOnly: { changed: drift.length > 0, textFile: refresh.planTextFile },
    plan: {
      changed: normal.summary.hasChanges,
      textFile: normal.planTextFile,
      summary: normal.summary,
      planFile: normal.planFile,
      planSha256: normal.planSha256,
    },
  };
}
