// `when` rules: conditions on the PR (base branch glob, label) that override apply requirements and onFailure.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseRepoConfigFile, resolveProject, type ResolvedProject } from '../../../activities/repo-config/index.ts';

const text = readFileSync(new URL('../../fixtures/repo-config/valid/when-overrides.yml', import.meta.url), 'utf8');
const prod: ResolvedProject = parseRepoConfigFile(text, { cpuCount: 1 }).config!.projects[0];
const approved = (count: number, teams: string[] = []) => ({ kind: 'approved', count, users: [], teams });

describe('resolveProject', () => {
  test('no rule matches: the project as configured', () => {
    const resolved = resolveProject(prod, { baseBranch: 'develop', labels: ['docs'] });
    expect(resolved).toEqual(prod);
  });

  test('prod needs two approvals and mergeable when the PR targets main', () => {
    const resolved = resolveProject(prod, { baseBranch: 'main', labels: [] });
    expect(resolved.applyRequirements).toEqual([approved(2), { kind: 'mergeable' }]);
    expect(resolved.onFailure).toBe('rollback');
  });

  test('a label rule overrides only the keys it sets', () => {
    const resolved = resolveProject(prod, { baseBranch: 'develop', labels: ['yolo'] });
    expect(resolved.onFailure).toBe('none');
    expect(resolved.applyRequirements).toEqual([approved(1)]);
  });

  test('matching rules stack in order; the later one wins a key both set', () => {
    const resolved = resolveProject(prod, { baseBranch: 'main', labels: ['yolo'] });
    expect(resolved.applyRequirements).toEqual([approved(2), { kind: 'mergeable' }]);
    expect(resolved.onFailure).toBe('none');
  });

  test('every condition of a rule must hold: branch glob and label (labels ignore case)', () => {
    expect(resolveProject(prod, { baseBranch: 'release/2025/q1', labels: ['emergency'] }).applyRequirements).toEqual([approved(1, ['acme/oncall'])]);
    expect(resolveProject(prod, { baseBranch: 'release/2025/q1', labels: [] }).applyRequirements).toEqual([approved(1)]);
    expect(resolveProject(prod, { baseBranch: 'hotfix/x', labels: ['Emergency'] }).applyRequirements).toEqual([approved(1)]);
  });

  test('a single * does not cross a /', () => {
    const { config } = parseRepoConfigFile(
      'projects:\n  - name: a\n    dir: a\n    when: [{ baseBranch: "release/*", onFailure: none }]\n',
      { cpuCount: 1 },
    );
    const [a] = config!.projects;
    expect(resolveProject(a, { baseBranch: 'release/1.2', labels: [] }).onFailure).toBe('none');
    expect(resolveProject(a, { baseBranch: 'release/1.2/hotfix', labels: [] }).onFailure).toBe('rollback');
  });

  test('is pure: the input project is not changed', () => {
    const before = structuredClone(prod);
    resolveProject(prod, { baseBranch: 'main', labels: ['yolo'] });
    expect(prod).toEqual(before);
  });
});
