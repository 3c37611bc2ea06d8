// Golden files: the exact text the bot writes, compared after replacing what differs per run (SHAs,
// resource ids, durations, temp paths). `UPDATE_GOLDEN=1` rewrites them; review the diff like code.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';

export function normalize(text: string, known: Record<string, string> = {}): string {
  let out = text;
  for (const [placeholder, value] of Object.entries(known)) if (value) out = out.split(value).join(placeholder);
  return out
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<uuid>')
    .replace(/\b[0-9a-f]{40}\b/g, '<sha>')
    .replace(/after \d+s/g, 'after <n>s')
    .replace(/\/tmp\/[\w./-]+/g, '<tmp>');
}

/**
 * `elideOutput` replaces the body of ```text blocks: terraform applies independent resources in
 * parallel, so its log lines come in varying order. Assert on the lines that matter separately.
 */
export function expectGolden(name: string, text: string, known: Record<string, string> = {}, opts: { elideOutput?: boolean } = {}): void {
  const file = new URL(`../fixtures/golden/${name}.md`, import.meta.url);
  let actual = normalize(text, known);
  if (opts.elideOutput) actual = actual.replace(/^```text\n[\s\S]*?^```$/gm, '```text\n<terraform output>\n```');
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) {
    if (!process.env.UPDATE_GOLDEN && process.env.CI) throw new Error(`golden file ${name}.md is missing`);
    writeFileSync(file, actual);
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}
