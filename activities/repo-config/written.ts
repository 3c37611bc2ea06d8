// `.terrapin.yml` data, once the JSON Schema has checked it (and dropped what it rejected), in the shapes
// the rest of Terrapin uses: shorthands expanded, nothing resolved or defaulted yet.
import type { ApplyRequirement, CommandRule, GuardedCommand, Hooks, InputRef, OnFailure, PolicyCheck, WhenRule, WrittenSettings } from '../../shared/config.ts';

type Commands = string | string[];
type RequirementData = string | { approved?: { count?: number; users?: string[]; teams?: string[] }; destroyNeeds?: { approvals?: number } };

/** What `defaults` and each project may hold, as the schema lets it be written. */
export interface SettingsData extends Omit<WrittenSettings, 'inputs' | 'applyRequirements' | 'hooks' | 'when' | 'dependsOn'> {
  dependsOn?: (string | undefined)[];
  inputs?: Record<string, string>;
  applyRequirements?: (RequirementData | undefined)[];
  hooks?: Partial<Record<keyof Hooks, Commands>>;
  when?: ({ baseBranch?: string; label?: string; applyRequirements?: (RequirementData | undefined)[]; onFailure?: OnFailure } | undefined)[];
}

export interface ProjectData extends SettingsData {
  name?: string;
  dir?: string;
}

export interface FileData {
  version?: 1;
  parallelism?: number;
  defaults?: SettingsData;
  projects?: (ProjectData | undefined)[];
  onFailure?: OnFailure;
  allowForks?: boolean;
  deployOnPush?: boolean;
  permissions?: Partial<Record<GuardedCommand, Partial<CommandRule>>>;
  lock?: { ttl?: string };
  replanOnBaseChange?: { concurrency?: number };
  policies?: ({ name?: string; run?: string; projects?: (string | undefined)[] } | undefined)[];
}

function present<T>(items: (T | undefined)[]): T[];
function present<T>(items: (T | undefined)[] | undefined): T[] | undefined;
function present<T>(items: (T | undefined)[] | undefined): T[] | undefined {
  return items?.filter((x): x is T => x !== undefined);
}

/** `vpc_id: network.outputs.vpc_id` → `{ project: 'network', output: 'vpc_id' }` (the schema checked the form). */
const INPUT_REF = /^(.+)\.outputs\.([A-Za-z_][A-Za-z0-9_-]*)$/;

function inputRef(text: string): InputRef {
  const [, project, output] = INPUT_REF.exec(text)!;
  return { project, output };
}

function requirement(r: RequirementData): ApplyRequirement | undefined {
  if (typeof r === 'string') return r === 'approved' ? { kind: 'approved', count: 1, users: [], teams: [] } : { kind: r as 'mergeable' | 'undiverged' };
  if (r.approved) return { kind: 'approved', count: r.approved.count ?? 1, users: r.approved.users ?? [], teams: r.approved.teams ?? [] };
  if (r.destroyNeeds?.approvals !== undefined) return { kind: 'destroyNeeds', approvals: r.destroyNeeds.approvals };
  return undefined;
}

const requirements = (list: (RequirementData | undefined)[] | undefined) => present(present(list)?.map(requirement));

export function writtenSettings(s: SettingsData): WrittenSettings {
  const { dependsOn, inputs, applyRequirements, hooks, when, ...plain } = s;
  const out: WrittenSettings = { ...plain };
  if (dependsOn) out.dependsOn = present(dependsOn);
  if (inputs) out.inputs = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, inputRef(v)]));
  if (applyRequirements) out.applyRequirements = requirements(applyRequirements);
  if (hooks) out.hooks = Object.fromEntries(Object.entries(hooks).map(([k, v]) => [k, [v].flat()]));
  if (when) {
    out.when = present(when).map(({ applyRequirements: reqs, ...rule }): WhenRule => ({ ...rule, ...(reqs ? { applyRequirements: requirements(reqs) } : {}) }));
  }
  return out;
}

export function policyChecks(data: FileData['policies']): PolicyCheck[] {
  return (present(data) ?? []).flatMap((p) => (p.name !== undefined && p.run !== undefined ? [{ name: p.name, run: p.run, projects: present(p.projects) ?? ['*'] }] : []));
}
