// The pieces of an error line: the suggestion, the path and the `got …` part.
import { describe, expect, test } from 'vitest';
import { closestMatch, describeValue, formatConfigError, formatPath } from '../../../activities/repo-config/errors.ts';

describe('closestMatch', () => {
  const keys = ['name', 'dir', 'dependsOn', 'applyRequirements', 'onFailure'];

  test('case, "_" and "-" do not count as differences, however many', () => {
    expect(closestMatch('DEPENDS_ON', keys)).toBe('dependsOn');
    expect(closestMatch('apply-requirements', keys)).toBe('applyRequirements');
    expect(closestMatch('ON_FAILURE', keys)).toBe('onFailure');
  });

  test('typos within a third of the length are suggested, the nearest first', () => {
    expect(closestMatch('applyRequirments', keys)).toBe('applyRequirements');
    expect(closestMatch('dirr', keys)).toBe('dir');
    expect(closestMatch('rollbak', ['rollback', 'none'])).toBe('rollback');
  });

  test('nothing is suggested for unrelated words', () => {
    expect(closestMatch('owner', keys)).toBeUndefined();
    expect(closestMatch('x', keys)).toBeUndefined();
    expect(closestMatch('opentofu', ['terraform', 'tofu'])).toBeUndefined();
  });
});

describe('formatPath', () => {
  test('indexes in brackets, identifiers dotted, other keys quoted', () => {
    expect(formatPath([])).toBe('');
    expect(formatPath(['projects', 1, 'dir'])).toBe('projects[1].dir');
    expect(formatPath(['projects', 0, 'env', 'AWS REGION'])).toBe('projects[0].env["AWS REGION"]');
    expect(formatPath(['projects', 0, 'inputs', '1subnet'])).toBe('projects[0].inputs["1subnet"]');
  });
});

describe('describeValue', () => {
  test('scalars as written, collections by kind', () => {
    expect(['x', 1, 2.5, true, null, [1], { a: 1 }].map(describeValue)).toEqual(['"x"', '1', '2.5', 'true', 'an empty value', 'a list', 'a mapping']);
  });
});

describe('formatConfigError', () => {
  test('a syntax error has no path part', () => {
    expect(formatConfigError({ file: '.terrapin.yml', line: 4, column: 5, path: '', message: 'invalid YAML: Map keys must be unique' })).toBe(
      '.terrapin.yml:4:5: invalid YAML: Map keys must be unique',
    );
  });
});
