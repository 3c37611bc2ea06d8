// get_run's log tail: the last lines asked for, never more than 16 KB, and whether anything was left out.
import { describe, expect, it } from 'vitest';
import { tail } from '../../mcp/run-view.ts';

describe('tail', () => {
  it('the last lines, saying whether the log was longer', () => {
    expect(tail('a\nb\nc\n', 2)).toEqual({ text: 'b\nc', truncated: true });
    expect(tail('a\nb\nc\n', 3)).toEqual({ text: 'a\nb\nc', truncated: false });
    expect(tail('', 5)).toEqual({ text: '', truncated: false });
  });

  it('long lines are cut to the last 16 KB', () => {
    const long = `${'x'.repeat(20_000)}\nend`;
    const { text, truncated } = tail(long, 100);
    expect(text).toHaveLength(16_384);
    expect(text.endsWith('\nend')).toBe(true);
    expect(truncated).toBe(true);
  });
});
