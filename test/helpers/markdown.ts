// Checks on the markdown the bot writes, for tests.
import { expect } from 'vitest';

/** An inline code span; GitHub shows its text literally, so tags in it open or close nothing. */
const CODE_SPAN = /(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)/g;

/** Every part must stand alone: fences closed, <details> balanced, never closed before opened. */
export function expectBalanced(text: string): void {
  let fence: string | undefined;
  let details = 0;
  for (const line of text.split('\n')) {
    const m = /^(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence) {
      if (m && m[1]![0] === fence[0] && m[1]!.length >= fence.length && !m[2]) fence = undefined;
      continue;
    }
    if (m) {
      fence = m[1];
      continue;
    }
    for (const tag of line.replace(CODE_SPAN, '').matchAll(/<(\/?)details>/g)) {
      details += tag[1] ? -1 : 1;
      expect(details).toBeGreaterThanOrEqual(0);
    }
  }
  expect(fence).toBeUndefined();
  expect(details).toBe(0);
}
