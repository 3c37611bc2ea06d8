// What a plan does, resource by resource, grouped for a reviewer, from `terraform show -json`. Pure: the
// words are in comment-templates/partials/change-summary*.md.hbs. No value of a resource is kept; an
// output's value only when terraform marks neither side sensitive and it is short.

/** The groups, in the order the comment lists them. */
export const CHANGE_KINDS = ['create', 'update', 'replace', 'destroy', 'import', 'move', 'forget'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** A group longer than this is collapsed in the comment. */
export const COLLAPSE_OVER = 20;
/** An output value (as JSON) longer than this is not shown. */
export const MAX_VALUE_CHARS = 60;
/** Addresses and ids (for_each keys, import ids: any text a PR chooses) are cut to this many characters. */
export const MAX_NAME_CHARS = 200;

export interface ResourceEntry {
  address: string;
  /** move: the address in the state before. */
  from?: string;
  /** import: the id given to terraform. */
  importId?: string;
  /** destroy of a deposed object (left by an interrupted create-before-destroy replacement). */
  deposed?: string;
  /** terraform's action_reason, e.g. "replace_because_tainted"; the template words the ones it knows. */
  reason?: string;
}

export interface ChangeGroup {
  kind: ChangeKind;
  /** destroy and replace delete an object. */
  warn: boolean;
  count: number;
  collapsed: boolean;
  entries: ResourceEntry[];
}

export interface OutputEntry {
  name: string;
  action: 'create' | 'update' | 'delete';
  /** Marked sensitive on either side (or not marked at all): no value is shown. */
  sensitive: boolean;
  /** A value to show is longer than MAX_VALUE_CHARS: none is shown. */
  long: boolean;
  afterUnknown: boolean;
  /** The values as JSON, set only when shown: `before` for an update, `after` for a create or update. */
  before?: string;
  after?: string;
}

export interface ChangeSummary {
  /** The groups with entries, in CHANGE_KINDS order. */
  groups: ChangeGroup[];
  outputs: OutputEntry[];
  outputsCollapsed: boolean;
  hasChanges: boolean;
}

interface ResourceChangeJson {
  address?: string;
  previous_address?: string;
  deposed?: string;
  action_reason?: string;
  change?: { actions?: string[]; importing?: { id?: string } | null };
}

interface OutputChangeJson {
  actions?: string[];
  before?: unknown;
  after?: unknown;
  after_unknown?: unknown;
  before_sensitive?: unknown;
  after_sensitive?: unknown;
}

interface PlanJson {
  resource_changes?: ResourceChangeJson[];
  output_changes?: Record<string, OutputChangeJson>;
}

/** The groups one resource change belongs to: its action, and import and move besides (terraform counts both). */
function kindsOf(rc: ResourceChangeJson): ChangeKind[] {
  const actions = rc.change?.actions ?? [];
  const kinds: ChangeKind[] = [];
  const has = (a: string) => actions.includes(a);
  if (has('create') && has('delete')) kinds.push('replace');
  else {
    if (has('create')) kinds.push('create');
    if (has('delete')) kinds.push('destroy');
  }
  if (has('update')) kinds.push('update');
  if (has('forget')) kinds.push('forget');
  if (rc.change?.importing) kinds.push('import');
  if (rc.previous_address && rc.previous_address !== rc.address) kinds.push('move');
  return kinds;
}

/** The text, cut to MAX_NAME_CHARS with an ellipsis (never inside a surrogate pair). */
function clip(value: unknown): string {
  const text = String(value ?? '');
  if (text.length <= MAX_NAME_CHARS) return text;
  const cut = /[\ud800-\udbff]/.test(text[MAX_NAME_CHARS - 2]!) ? MAX_NAME_CHARS - 2 : MAX_NAME_CHARS - 1;
  return `${text.slice(0, cut)}…`;
}

function entryFor(kind: ChangeKind, rc: ResourceChangeJson): ResourceEntry {
  const entry: ResourceEntry = { address: clip(rc.address) };
  if (kind === 'move') entry.from = clip(rc.previous_address);
  if (kind === 'import' && typeof rc.change?.importing?.id === 'string') entry.importId = clip(rc.change.importing.id);
  if (kind === 'destroy' && rc.deposed) entry.deposed = clip(rc.deposed);
  if ((kind === 'destroy' || kind === 'replace') && rc.action_reason) entry.reason = String(rc.action_reason);
  return entry;
}

/** Whether a sensitivity mark says anything is sensitive. A missing mark cannot say it is not. */
function marksSensitive(mark: unknown): boolean {
  if (mark === undefined || mark === true) return true;
  if (mark === null || typeof mark !== 'object') return false;
  return Object.values(mark).some((m) => m !== false && marksSensitive(m));
}

/** Whether an after_unknown mark has any unknown part. */
function marksUnknown(mark: unknown): boolean {
  if (mark === true) return true;
  if (mark === null || typeof mark !== 'object') return false;
  return Object.values(mark).some(marksUnknown);
}

function outputEntry(name: string, oc: OutputChangeJson): OutputEntry | undefined {
  const actions = oc.actions ?? [];
  if (actions.every((a) => a === 'no-op' || a === 'read')) return undefined;
  const action = actions.includes('create') && !actions.includes('delete') ? 'create' : actions.length === 1 && actions[0] === 'delete' ? 'delete' : 'update';
  const sensitive = marksSensitive(oc.before_sensitive) || marksSensitive(oc.after_sensitive);
  const afterUnknown = marksUnknown(oc.after_unknown);
  const entry: OutputEntry = { name, action, sensitive, long: false, afterUnknown };
  if (sensitive || action === 'delete') return entry;
  const shown: Partial<Record<'before' | 'after', string>> = {};
  if (action === 'update') shown.before = JSON.stringify(oc.before ?? null);
  if (!afterUnknown) shown.after = JSON.stringify(oc.after ?? null);
  if (Object.values(shown).some((v) => v.length > MAX_VALUE_CHARS)) return { ...entry, long: true };
  return { ...entry, ...shown };
}

export function summarizeChanges(planJson: unknown): ChangeSummary {
  const plan = (planJson ?? {}) as PlanJson;
  const byKind = new Map<ChangeKind, ResourceEntry[]>(CHANGE_KINDS.map((k) => [k, []]));
  for (const rc of Array.isArray(plan.resource_changes) ? plan.resource_changes : []) {
    for (const kind of kindsOf(rc)) byKind.get(kind)!.push(entryFor(kind, rc));
  }
  const groups = CHANGE_KINDS.filter((kind) => byKind.get(kind)!.length > 0).map((kind) => {
    const entries = byKind.get(kind)!;
    return { kind, warn: kind === 'destroy' || kind === 'replace', count: entries.length, collapsed: entries.length > COLLAPSE_OVER, entries };
  });
  const outputs = Object.entries(plan.output_changes ?? {}).flatMap(([name, oc]) => outputEntry(name, oc) ?? []);
  return { groups, outputs, outputsCollapsed: outputs.length > COLLAPSE_OVER, hasChanges: groups.length > 0 || outputs.length > 0 };
}
