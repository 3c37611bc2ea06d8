// The golden helper itself: a missing golden fails unless UPDATE_GOLDEN=1 (which writes it); a golden
// that differs fails; what varies per run is replaced before comparing.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { elideOutput, expectGoldenFile, normalize } from '../helpers/golden.ts';

let dir: string;
let saved: string | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'terrapin-golden-'));
  saved = process.env.UPDATE_GOLDEN;
  delete process.env.UPDATE_GOLDEN;
});
afterEach(() => {
  if (saved === undefined) delete process.env.UPDATE_GOLDEN;
  else process.env.UPDATE_GOLDEN = saved;
  rmSync(dir, { recursive: true, force: true });
});

const golden = (name: string) => pathToFileURL(join(dir, name));

describe('expectGoldenFile', () => {
  test('a missing golden fails and is not written, whether or not CI is set', () => {
    expect(() => expectGoldenFile(golden('missing.md'), 'text')).toThrow(/missing\.md is missing: run with UPDATE_GOLDEN=1/);
    expect(existsSync(join(dir, 'missing.md'))).toBe(false);
  });

  test('UPDATE_GOLDEN=1 writes the normalized text (creating dirs), and the comparison then holds', () => {
    process.env.UPDATE_GOLDEN = '1';
    const sha = 'a'.repeat(40);
    expectGoldenFile(golden('sub/new.md'), `plan for ${sha} (${sha.slice(0, 7)})`, { '<head-sha>': sha, '<head>': sha.slice(0, 7) });
    expect(readFileSync(join(dir, 'sub/new.md'), 'utf8')).toBe('plan for <head-sha> (<head>)');
  });

  test('a golden that differs by one character fails', () => {
    writeFileSync(join(dir, 'one.md'), 'Applied.');
    expectGoldenFile(golden('one.md'), 'Applied.');
    expect(() => expectGoldenFile(golden('one.md'), 'Applied!')).toThrow();
  });
});

describe('normalize', () => {
  test('replaces shas, uuids, durations, temp paths and a reconcile key’s plan hash', () => {
    const text = [
      `at ${'0123456789abcdef0123456789abcdef01234567'}`,
      'id=6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b',
      'Creation complete after 12s',
      'see /tmp/terrapin-data-x1/work/plan.tfplan',
      '<!-- terrapin:reconcile-34471411d2b9:0 -->',
    ].join('\n');
    expect(normalize(text)).toBe(['at <sha>', 'id=<uuid>', 'Creation complete after <n>s', 'see <tmp>', '<!-- terrapin:reconcile-<plan-sha256>:0 -->'].join('\n'));
  });

  test('elideOutput replaces every ```text block and nothing else', () => {
    expect(elideOutput('a\n```text\nline 2\nline 1\n```\nb\n```diff\n+ x\n```\n')).toBe('a\n```text\n<terraform output>\n```\nb\n```diff\n+ x\n```\n');
  });
});
