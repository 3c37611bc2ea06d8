// How configuration errors read: one line each, with position, path and what was expected.
import { distance } from 'fastest-levenshtein';
import type { ConfigError } from '../../shared/config.ts';

/** `.terrapin.yml:7:12: projects[1].dir: must be a path inside the repository, got "../x"` */
export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}:${e.column}: ${e.path ? `${e.path}: ` : ''}${e.message}`;
}

export type PathSegment = string | number;

/** `['projects', 1, 'env', 'A B']` → `projects[1].env["A B"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  return path.reduce<string>(appendPath, '');
}

/** `formatPath([...path, seg])` given `formatPath(path)`. */
export function appendPath(formatted: string, seg: PathSegment): string {
  if (typeof seg === 'number') return `${formatted}[${seg}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) return formatted ? `${formatted}.${seg}` : seg;
  return `${formatted}[${JSON.stringify(seg)}]`;
}

/** Most characters of a value from the file any message repeats. */
export const EXCERPT_LIMIT = 40;

/**
 * A value from the file as messages quote it: JSON-quoted, its first line only, at most EXCERPT_LIMIT
 * characters. The file may be hostile (or not what it seems): a message never carries more of it than this.
 */
export function quote(value: string): string {
  const firstLine = value.split(/\r?\n|\r/, 1)[0] ?? '';
  const multiline = firstLine.length < value.length;
  const cut = firstLine.length > EXCERPT_LIMIT;
  return `${JSON.stringify(cut ? firstLine.slice(0, EXCERPT_LIMIT) : firstLine).slice(0, -1)}${cut || multiline ? '…' : ''}"`;
}

/** `formatPath` for messages: a key from the file is shown as a short excerpt like any other value. */
export function displayPath(path: readonly PathSegment[]): string {
  return formatPath(path.map((seg) => (typeof seg === 'string' && (seg.length > EXCERPT_LIMIT || /[\r\n]/.test(seg)) ? JSON.parse(quote(seg)) : seg)));
}

/** The `got …` part: scalars as written in JSON (short excerpts), collections by kind. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return quote(value);
  return quote(String(value)).slice(1, -1);
}

// Case, `_` and `-` are the usual slips (depends_on, DependsOn), so they count as no difference at all.
const fold = (s: string) => s.toLowerCase().replace(/[-_]/g, '');

/** The candidate the user most likely meant, or undefined when none is close. */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const folded = fold(word);
  const exact = candidates.find((c) => fold(c) === folded);
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(folded.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(folded, fold(c));
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}
