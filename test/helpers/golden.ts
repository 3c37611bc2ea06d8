// Golden files: the exact text the bot writes, compared after replacing what differs per run (SHAs,
// resource ids, durations, temp paths).
//
// UPDATE_GOLDEN=1 (re)writes every golden a test compares with the text of this run, missing ones
// included; review the diff like code. Without it a missing golden file fails the test, locally as in
// CI: a golden is never created silently, so a typo in its name cannot turn a comparison into a write.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export function normalize(text: string, known: Record<string, string> = {}): string {
  let out = text;
  for (const [placeholder, value] of Object.entries(known)) if (value) out = out.split(value).join(placeholder);
  return out
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<uuid>')
    .replace(/\b[0-9a-f]{40}\b/g, '<sha>')
    .replace(/after \d+s/g, 'after <n>s')
    // A reconcile comment's key carries the fix-plan's hash: plan files hold a timestamp.
    .replace(/(<!-- terrapin:reconcile-)[0-9a-f]{12}(:\d+ -->)/g, '$1<plan-sha256>$2')
    .replace(/\/tmp\/[\w./-]+/g, '<tmp>');
}

/** Replaces the body of every ```text block: terraform's apply log lines come in varying order. */
export function elideOutput(text: string): string {
  return text.replace(/^```text\n[\s\S]*?^```$/gm, '```text\n<terraform output>\n```');
}

export const updatingGoldens = (): boolean => Boolean(process.env.UPDATE_GOLDEN);

/**
 * Compares `text`, normalized, with the golden file at `file`. With UPDATE_GOLDEN=1 the file is written
 * first (so the comparison passes and the diff shows in git); without it a missing file fails.
 */
export function expectGoldenFile(file: URL, text: string, known: Record<string, string> = {}, opts: { elideOutput?: boolean } = {}): void {
  let actual = normalize(text, known);
  if (opts.elideOutput) actual = elideOutput(actual);
  const path = fileURLToPath(file);
  if (updatingGoldens()) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
  } else if (!existsSync(path)) {
    throw new Error(`golden file ${path} is missing: run with UPDATE_GOLDEN=1 to write it, then review it`);
  }
  expect(actual, `golden ${path}`).toBe(readFileSync(path, 'utf8'));
}

/**
 * `elideOutput` replaces the body of ```text blocks: terraform applies independent resources in
 * parallel, so its log lines come in varying order. Assert on the lines that matter separately.
 */
export function expectGolden(name: string, text: string, known: Record<string, string> = {}, opts: { elideOutput?: boolean } = {}): void {
  expectGoldenFile(new URL(`../fixtures/golden/${name}.md`, import.meta.url), text, known, opts);
}
