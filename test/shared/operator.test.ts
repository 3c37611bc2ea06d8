// Which issues are operator requests, and which projects a destroy takes with it: pure helpers.
import { describe, expect, test } from 'vitest';
import { gateIssueTarget, operatorWorkflowId } from '../../shared/operator.ts';
import { dependentsOf } from '../../workflows/operator-run.ts';
import type { ResolvedProject } from '../../shared/config.ts';

describe('gateIssueTarget', () => {
  const labels = [{ name: 'terrapin:gate' }];
  test('the exact titles the gate issue gets, with its label', () => {
    expect(gateIssueTarget({ title: 'Apply requested: network', labels })).toEqual({ kind: 'apply', project: 'network' });
    expect(gateIssueTarget({ title: 'Destroy requested: app-1', labels: ['terrapin:gate'] })).toEqual({ kind: 'destroy', project: 'app-1' });
  });
  test('anything else is just an issue', () => {
    expect(gateIssueTarget({ title: 'Apply requested: network', labels: [{ name: 'terrapin:drift' }] })).toBeUndefined();
    expect(gateIssueTarget({ title: 'Apply requested: network', labels: [] })).toBeUndefined();
    expect(gateIssueTarget({ title: 'Re: Apply requested: network', labels })).toBeUndefined();
    expect(gateIssueTarget({ title: 'Apply requested: two words', labels })).toBeUndefined();
    expect(gateIssueTarget({ title: 'Drift detected: network', labels })).toBeUndefined();
  });
  test('one workflow per repository, project and kind', () => {
    expect(operatorWorkflowId({ owner: 'acme', name: 'infra' }, 'network', 'destroy')).toBe('operator:acme/infra:network:destroy');
  });
});

describe('dependentsOf', () => {
  const p = (name: string, dependsOn: string[] = []) => ({ name, dependsOn }) as unknown as ResolvedProject;
  const all = [p('network'), p('database', ['network']), p('app', ['database']), p('cdn'), p('web', ['app', 'cdn'])];
  test('every project that depends on it, directly or through others, in configuration order', () => {
    expect(dependentsOf(all, 'network')).toEqual(['database', 'app', 'web']);
    expect(dependentsOf(all, 'cdn')).toEqual(['web']);
    expect(dependentsOf(all, 'web')).toEqual([]);
  });
});
