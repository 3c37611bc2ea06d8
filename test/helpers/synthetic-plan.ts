// A large plan made up in memory, shaped like `terraform show -json` and `terraform show` output: for the
// big-input test of the change summary and `npm run bench:summary`. Real plans of this size would take
// terraform minutes; the summary only reads the shape.

/** Resource actions in rotation: every group of the summary gets a share. */
const ROTATION: Array<{ actions: string[]; importing?: boolean; moved?: boolean; marker: string; words: string }> = [
  { actions: ['create'], marker: '+', words: 'will be created' },
  { actions: ['update'], marker: '~', words: 'will be updated in-place' },
  { actions: ['delete', 'create'], marker: '-/+', words: 'must be replaced' },
  { actions: ['delete'], marker: '-', words: 'will be destroyed' },
  { actions: ['no-op'], importing: true, marker: ' ', words: 'will be imported' },
  { actions: ['no-op'], moved: true, marker: ' ', words: 'has moved' },
  { actions: ['forget'], marker: '.', words: 'will no longer be managed by Terraform' },
  { actions: ['create'], marker: '+', words: 'will be created' },
];

export interface SyntheticPlan {
  json: Record<string, unknown>;
  /** Plan text as plan-format.ts leaves it for the ```diff block. */
  text: string;
  /** Values marked sensitive in the JSON: none may reach a comment. */
  secrets: string[];
}

export function syntheticPlan(changes: number, outputs = 200): SyntheticPlan {
  const resourceChanges: unknown[] = [];
  const lines = ['Terraform will perform the following actions:', ''];
  const secrets: string[] = [];
  for (let i = 0; i < changes; i++) {
    const kind = ROTATION[i % ROTATION.length]!;
    const address = `module.svc_${i % 40}.terraform_data.item["key-${i}"]`;
    const secret = `secret-value-${i}`;
    if (i % 100 === 0) secrets.push(secret);
    resourceChanges.push({
      address,
      ...(kind.moved ? { previous_address: `module.svc_${i % 40}.terraform_data.old["key-${i}"]` } : {}),
      mode: 'managed',
      type: 'terraform_data',
      name: 'item',
      index: `key-${i}`,
      ...(kind.actions[0] === 'delete' ? { action_reason: kind.actions.length > 1 ? 'replace_because_cannot_update' : 'delete_because_no_resource_config' } : {}),
      change: {
        actions: kind.actions,
        before: kind.actions[0] === 'create' ? null : { id: `id-${i}`, input: secret },
        after: kind.actions.includes('delete') && kind.actions.length === 1 ? null : { input: secret },
        before_sensitive: { input: true },
        after_sensitive: { input: true },
        ...(kind.importing ? { importing: { id: `import-${i}` } } : {}),
      },
    });
    lines.push(`  # ${address} ${kind.words}`, `${kind.marker.padEnd(3)} resource "terraform_data" "item" {`);
    lines.push(`${kind.marker === ' ' ? ' ' : kind.marker[0]}       input  = (sensitive value)`, `        id     = "id-${i}"`, '    }', '');
  }
  const outputChanges: Record<string, unknown> = {};
  for (let i = 0; i < outputs; i++) {
    const sensitive = i % 3 === 0;
    const value = sensitive ? `output-secret-${i}` : `value-${i}`;
    if (sensitive) secrets.push(value);
    outputChanges[`out_${i}`] = { actions: ['update'], before: `${value}-old`, after: value, after_unknown: false, before_sensitive: sensitive, after_sensitive: sensitive };
  }
  lines.push(`Plan: ${changes} changes.`);
  return {
    json: { format_version: '1.2', terraform_version: '1.11.4', resource_changes: resourceChanges, output_changes: outputChanges },
    text: lines.join('\n'),
    secrets,
  };
}
