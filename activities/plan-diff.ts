// Compares two plans of one project: a unified diff of their text for people, and the resource
// addresses, actions and values for deciding whether a new plan still matches the one that was approved.
// Values are compared, never shown: a description names the attribute, and says when it is sensitive.
import { formatPatch, FILE_HEADERS_ONLY, structuredPatch } from 'diff';

/** The part of `terraform show -json <plan>` compared here. */
export interface PlanJson {
  resource_changes?: Array<{ address: string; change: PlanChange }>;
  output_changes?: Record<string, PlanChange & { sensitive?: boolean }>;
}

export interface PlanChange {
  actions: string[];
  importing?: unknown;
  before?: unknown;
  after?: unknown;
  after_unknown?: unknown;
  before_sensitive?: unknown;
  after_sensitive?: unknown;
  replace_paths?: unknown;
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
function actionName(change: Pick<PlanChange, 'actions' | 'importing'> | undefined): string {
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

/** One JSON text per value, whatever the order of its keys: equal values, equal texts. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Whether a sensitivity marking (true, or an object or list holding true somewhere) marks anything. */
const marksSensitive = (mark: unknown): boolean =>
  mark === true || (Array.isArray(mark) ? mark.some(marksSensitive) : mark !== null && typeof mark === 'object' && Object.values(mark).some(marksSensitive));

const field = (value: unknown, key: string): unknown => (value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined);

/** The top-level attributes whose value before, value after, unknown-ness or replacing differ between two changes. */
function changedAttributes(a: PlanChange, b: PlanChange): Array<{ name: string; sensitive: boolean }> {
  const parts = ['before', 'after', 'after_unknown'] as const;
  const keys = new Set<string>();
  for (const part of parts) {
    for (const c of [a, b]) if (c[part] && typeof c[part] === 'object') for (const k of Object.keys(c[part] as object)) keys.add(k);
  }
  const sensitive = (k: string) => [a, b].some((c) => marksSensitive(field(c.before_sensitive, k)) || marksSensitive(field(c.after_sensitive, k)));
  const changed = [...keys].sort().filter((k) => parts.some((part) => canonical(field(a[part], k)) !== canonical(field(b[part], k))));
  const out = changed.map((name) => ({ name, sensitive: sensitive(name) }));
  // A value that is not an object (or that only one plan has) has no attributes to name.
  const whole = parts.some((part) => canonical(a[part]) !== canonical(b[part])) && changed.length === 0;
  if (whole) out.push({ name: '', sensitive: marksSensitive(a.before_sensitive) || marksSensitive(a.after_sensitive) || marksSensitive(b.before_sensitive) || marksSensitive(b.after_sensitive) });
  if (canonical(a.replace_paths) !== canonical(b.replace_paths)) out.push({ name: 'replace_paths', sensitive: false });
  return out;
}

function describeValues(subject: string, attrs: Array<{ name: string; sensitive: boolean }>): string[] {
  if (attrs.length === 0) return [];
  const named = attrs.filter((x) => x.name && x.name !== 'replace_paths');
  const lines: string[] = [];
  const plain = named.filter((x) => !x.sensitive).map((x) => x.name);
  const hidden = named.filter((x) => x.sensitive).map((x) => x.name);
  if (plain.length) lines.push(`${subject}: values of ${plain.join(', ')} changed`);
  if (hidden.length) lines.push(`${subject}: values of ${hidden.join(', ')} changed (sensitive)`);
  const whole = attrs.find((x) => x.name === '');
  if (whole) lines.push(`${subject}: values changed${whole.sensitive ? ' (sensitive)' : ''}`);
  if (attrs.some((x) => x.name === 'replace_paths')) lines.push(`${subject}: what forces the replacement changed`);
  return lines;
}

/**
 * One line per resource or output whose action or values differ, sorted by address: the actions as in
 * describeActionChanges, then "terraform_data.x: values of input changed" (never the values; "(sensitive)"
 * when terraform marks them so). Resources and outputs that change nothing in either plan are left out.
 */
export function describePlanChanges(a: PlanJson, b: PlanJson): string[] {
  const actionLines = describeActionChanges(a, b);
  const differentAction = new Set(actionLines.map((l) => l.slice(0, l.lastIndexOf(': '))));
  const before = new Map((a.resource_changes ?? []).map((rc) => [rc.address, rc.change]));
  const after = new Map((b.resource_changes ?? []).map((rc) => [rc.address, rc.change]));
  const actionsA = actionsByAddress(a);
  const lines = new Map<string, string[]>();
  for (const address of [...actionsA.keys()].sort()) {
    const [ca, cb] = [before.get(address), after.get(address)];
    if (!ca || !cb || differentAction.has(address)) continue;
    lines.set(address, describeValues(address, changedAttributes(ca, cb)));
  }
  for (const line of actionLines) {
    const address = line.slice(0, line.lastIndexOf(': '));
    lines.set(address, [line, ...(lines.get(address) ?? [])]);
  }
  const outputs = outputLines(a, b);
  return [...[...lines.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).flatMap(([, l]) => l), ...outputs];
}

/** Outputs whose action or values differ (output values change nothing in the infrastructure, but downstreams read them). */
function outputLines(a: PlanJson, b: PlanJson): string[] {
  const changing = (c: PlanChange | undefined) => c !== undefined && actionName(c) !== 'no change';
  const names = [...new Set([...Object.keys(a.output_changes ?? {}), ...Object.keys(b.output_changes ?? {})])].sort();
  return names.flatMap((name) => {
    const [ca, cb] = [a.output_changes?.[name], b.output_changes?.[name]];
    if (!changing(ca) && !changing(cb)) return [];
    const subject = `output ${name}`;
    const [was, now] = [changing(ca) ? actionName(ca) : 'no change', changing(cb) ? actionName(cb) : 'no change'];
    if (was !== now) return [`${subject}: ${was} → ${now}`];
    const parts = ['before', 'after', 'after_unknown'] as const;
    if (!parts.some((p) => canonical(ca![p]) !== canonical(cb![p]))) return [];
    const sensitive = Boolean(ca!.sensitive || cb!.sensitive) || [ca!, cb!].some((c) => marksSensitive(c.before_sensitive) || marksSensitive(c.after_sensitive));
    return [`${subject}: value changed${sensitive ? ' (sensitive)' : ''}`];
  });
}

/** True when both plans would do the same actions, with the same values, to the same resources and outputs. */
export function samePlan(a: PlanJson, b: PlanJson): boolean {
  return describePlanChanges(a, b).length === 0;
}
