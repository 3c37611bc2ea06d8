// Pure helpers over terraform plan output: counts from `show -json`, and the human text reshaped for ```diff.
import type { PlanSummary } from '../shared/activity-contracts.ts';

interface ShowJson {
  resource_changes?: Array<{ change?: { actions?: string[]; importing?: unknown } }>;
  output_changes?: Record<string, { actions?: string[] }>;
}

export function summarizePlan(showJson: unknown): PlanSummary {
  const plan = (showJson ?? {}) as ShowJson;
  let add = 0;
  let change = 0;
  let destroy = 0;
  let imports = 0;
  let forget = 0;

  for (const rc of plan.resource_changes ?? []) {
    const actions = rc.change?.actions ?? [];
    if (rc.change?.importing) imports++;
    if (actions.includes('create')) add++;
    if (actions.includes('delete')) destroy++;
    if (actions.includes('update')) change++;
    if (actions.includes('forget')) forget++;
    // 'read' and 'no-op' change nothing on apply.
  }
  const outputsChanged = Object.values(plan.output_changes ?? {}).some((oc) =>
    (oc.actions ?? []).some((a) => a !== 'no-op'),
  );
  const resourcesChange = add + change + destroy + imports + forget > 0;

  let line: string;
  if (resourcesChange) {
    // Same wording and order as terraform's own summary line.
    const importPart = imports > 0 ? `${imports} to import, ` : '';
    const forgetPart = forget > 0 ? `, ${forget} to forget` : '';
    line = `Plan: ${importPart}${add} to add, ${change} to change, ${destroy} to destroy${forgetPart}.`;
  } else if (outputsChanged) {
    // Only outputs change: applying still updates the state, so this is not "No changes."
    line = 'Plan: 0 to add, 0 to change, 0 to destroy. Outputs will change.';
  } else {
    line = 'No changes.';
  }
  return {
    add,
    change,
    destroy,
    import: imports,
    outputsChanged,
    hasChanges: resourcesChange || outputsChanged,
    line,
  };
}

const MARKER_LINE = /^(\s*)(-\/\+|\+\/-|[+~-])(?=\s|$)/;

/**
 * Moves each line's leading change marker to column 0 and keeps the text after it where it was,
 * so GitHub's ```diff highlighting colours additions and removals.
 */
export function formatPlanAsDiff(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = MARKER_LINE.exec(line);
      if (!m) return line;
      const [whole, indent, marker] = m as unknown as [string, string, string];
      return marker + indent + line.slice(whole.length);
    })
    .join('\n');
}
