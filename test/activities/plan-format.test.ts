import { describe, expect, it } from 'vitest';
import { formatPlanAsDiff, summarizePlan } from '../../activities/plan-format.ts';

const rc = (actions: string[], extra: Record<string, unknown> = {}) => ({ change: { actions, ...extra } });

describe('summarizePlan', () => {
  it('counts create, update, delete and both orders of replacement', () => {
    const s = summarizePlan({
      resource_changes: [
        rc(['create']),
        rc(['create']),
        rc(['update']),
        rc(['delete']),
        rc(['delete', 'create']),
        rc(['create', 'delete']),
        rc(['read']),
        rc(['no-op']),
      ],
    });
    expect(s).toEqual({
      add: 4,
      change: 1,
      destroy: 3,
      import: 0,
      outputsChanged: false,
      hasChanges: true,
      line: 'Plan: 4 to add, 1 to change, 3 to destroy.',
    });
  });

  it('says "No changes." for reads and no-ops only', () => {
    const s = summarizePlan({ resource_changes: [rc(['no-op']), rc(['read'])], output_changes: { a: { actions: ['no-op'] } } });
    expect(s.line).toBe('No changes.');
    expect(s.hasChanges).toBe(false);
  });

  it('treats a plan that only changes outputs as a change', () => {
    const s = summarizePlan({ resource_changes: [rc(['no-op'])], output_changes: { a: { actions: ['update'] } } });
    expect(s.outputsChanged).toBe(true);
    expect(s.hasChanges).toBe(true);
    expect(s.line).toBe('Plan: 0 to add, 0 to change, 0 to destroy. Outputs will change.');
  });

  it('counts imports like terraform does', () => {
    const s = summarizePlan({ resource_changes: [rc(['no-op'], { importing: { id: 'x' } }), rc(['create'])] });
    expect(s.import).toBe(1);
    expect(s.line).toBe('Plan: 1 to import, 1 to add, 0 to change, 0 to destroy.');
  });

  it('copes with an empty or odd document', () => {
    expect(summarizePlan({}).line).toBe('No changes.');
    expect(summarizePlan(null).line).toBe('No changes.');
  });
});

describe('formatPlanAsDiff', () => {
  it('moves markers to column 0 and keeps the text after them in place', () => {
    const input = [
      'Terraform will perform the following actions:',
      '',
      '  # terraform_data.a will be created',
      '  + resource "terraform_data" "a" {',
      '      + id     = (known after apply)',
      '    }',
      '  ~ resource "terraform_data" "b" {',
      '      ~ input  = "x" -> "y"',
      '  - resource "terraform_data" "c" {',
      '-/+ resource "terraform_data" "d" {',
      '+/- resource "terraform_data" "e" {',
      '      - "old",',
    ].join('\n');
    expect(formatPlanAsDiff(input).split('\n')).toEqual([
      'Terraform will perform the following actions:',
      '',
      '  # terraform_data.a will be created',
      '+   resource "terraform_data" "a" {',
      '+       id     = (known after apply)',
      '    }',
      '~   resource "terraform_data" "b" {',
      '~       input  = "x" -> "y"',
      '-   resource "terraform_data" "c" {',
      '-/+ resource "terraform_data" "d" {',
      '+/- resource "terraform_data" "e" {',
      '-       "old",',
    ]);
  });

  it('leaves lines alone whose dash or plus is not a marker', () => {
    const input = ['  -----', '  +x', '  ~/path', 'Plan: 1 to add'].join('\n');
    expect(formatPlanAsDiff(input)).toBe(input);
  });
});
