// Compares two plans of one project: a unified diff of their text for people, and the resource
// addresses and actions for deciding whether a new plan still matches the one that was approved.
import { formatPatch, FILE_HEADERS_ONLY, structuredPatch } from 'diff';

/** The part of `terraform show -json <plan>` compared here. */
export interface PlanJson {
  resource_changes?: Array<{ address: string; change: { actions: string[]; importing?: unknown } }>;
}

const withFinalNewline = (text: string) => (text === '' || text.endsWith('\n') ? text : `${text}\n`);

/** Unified diff from `previous` to `current` with 3 lines of context; '' when the texts are the same. */
export function diffPlans(previous: string, current: string, labels: { previous: string; current: string }): string {
  // A missing final newline is not a difference worth a "\ No newline at end of file" line.
  const patch = structuredPatch(labels.previous, labels.current, withFinalNewline(previous), withFinalNewline(current), undefined, undefined, {
    context: 3,
  });
  return patch.hunks.length === 0 ? '' : formatPatch(patch, FILE_HEADERS_ONLY);
}

/** Terraform's action lists in the words of its plan output. */
function actionName(change: { actions: string[]; importing?: unknown } | undefined): string {
  const actions = change?.actions.join(',') ?? 'no-op';
  const names: Record<string, string> = {
    'no-op': 'no change',
    create: 'create',
    read: 'read',
    update: 'update',
    delete: 'delete',
    'delete,create': 'replace',
    'create,delete': 'replace (create before destroy)',
    forget: 'forget',
  };
  const name = names[actions] ?? actions.replaceAll(',', ' then ');
  return change?.importing ? `import, ${name}` : name;
}

/** address → action name; resources that do not change are left out, as if they were not in the plan. */
function actionsByAddress(plan: PlanJson): Map<string, string> {
  const byAddress = new Map<string, string>();
  for (const rc of plan.resource_changes ?? []) {
    const name = actionName(rc.change);
    if (name !== 'no change') byAddress.set(rc.address, name);
  }
  return byAddress;
}

/** True when both plans would do the same actions to the same resources (values may differ). */
export function sameResourceActions(a: PlanJson, b: PlanJson): boolean {
  return describeActionChanges(a, b).length === 0;
}

/** One line per resource whose action differs, sorted by address: "terraform_data.x: update → replace". */
export function describeActionChanges(a: PlanJson, b: PlanJson): string[] {
  const before = actionsByAddress(a);
  const after = actionsByAddress(b);
  const addresses = [...new Set([...before.keys(), ...after.keys()])].sort();
  return addresses.flatMap((address) => {
    const was = before.get(address) ?? 'no change';
    const now = after.get(address) ?? 'no change';
    return was === now ? [] : [`${address}: ${was} → ${now}`];
  });
}
