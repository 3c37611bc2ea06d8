// Outputs flowing between projects: an upstream's `terraform output -json` is saved to a file (mode 0600,
// it holds sensitive values), and a downstream reads the outputs it names as TF_VAR_<variable>.
// Sensitive values come back as secrets to scrub from everything terraform prints.
import { readBotFile, writeBotFile } from './checkout-files.ts';
import type { OutputInput } from '../shared/activity-contracts.ts';

interface TerraformOutput {
  value: unknown;
  sensitive?: boolean;
}

export type LoadedInputs = { ok: true; env: Record<string, string>; secrets: string[] } | { ok: false; error: string };

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** TF_VAR values: strings as they are; anything else as JSON, which terraform parses for complex types. */
function asVariable(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The strings a value could be printed as, for scrubbing (each leaf string too, for maps and lists). */
function printedForms(value: unknown): string[] {
  const forms = new Set<string>([asVariable(value)]);
  const walk = (v: unknown) => {
    if (typeof v === 'string') forms.add(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(value);
  return [...forms].filter((f) => f.length >= 4);
}

export async function loadInputs(inputs: readonly OutputInput[] = []): Promise<LoadedInputs> {
  const env: Record<string, string> = {};
  const secrets: string[] = [];
  const files = new Map<string, Record<string, TerraformOutput>>();
  for (const input of inputs) {
    if (!VARIABLE_NAME.test(input.variable)) return { ok: false, error: `input variable name ${JSON.stringify(input.variable)} is not valid` };
    let outputs = files.get(input.outputsFile);
    if (!outputs) {
      try {
        outputs = JSON.parse(await readBotFile(input.outputsFile)) as Record<string, TerraformOutput>;
      } catch {
        return { ok: false, error: `the outputs of project ${input.project} are not available (has it been applied?)` };
      }
      files.set(input.outputsFile, outputs);
    }
    const output = outputs[input.output];
    if (!output) {
      return { ok: false, error: `project ${input.project} has no output "${input.output}" (needed for variable "${input.variable}")` };
    }
    env[`TF_VAR_${input.variable}`] = asVariable(output.value);
    if (output.sensitive) secrets.push(...printedForms(output.value));
  }
  return { ok: true, env, secrets };
}

/** Saves `terraform output -json` text; returns false if it is not the JSON terraform prints. */
export async function saveOutputs(file: string, json: string): Promise<boolean> {
  try {
    const parsed: unknown = JSON.parse(json || '{}');
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return false;
  } catch {
    return false;
  }
  await writeBotFile(file, json || '{}');
  return true;
}
