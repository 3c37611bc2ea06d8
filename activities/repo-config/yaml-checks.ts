// A small schema language over `yaml` nodes. Checking the nodes (not the plain JS value) is what lets
// every error carry a line and column. Each check reports its own errors and returns the valid part
// (or undefined), so one run collects every error in the file.
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import { closestMatch, describeValue, displayPath, formatPath, quote, type PathSegment } from './errors.ts';
import type { ConfigError } from '../../shared/config.ts';

export interface CheckContext {
  file: string;
  doc: Document;
  lines: LineCounter;
  errors: ConfigError[];
  /** Every node checked, by formatted path, so cross-reference checks can point at it later. */
  nodes: Map<string, Node>;
}

export type Check<T> = (node: Node | null, path: PathSegment[], ctx: CheckContext) => T | undefined;

/** What a refine function returns to reject a value. */
export interface Invalid {
  invalid: string;
}
export const invalid = (message: string): Invalid => ({ invalid: message });
const isInvalid = (v: unknown): v is Invalid => typeof v === 'object' && v !== null && 'invalid' in v;

export function report(ctx: CheckContext, at: Node | null | undefined, path: readonly PathSegment[], message: string): void {
  const { line, col } = ctx.lines.linePos(at?.range?.[0] ?? 0);
  ctx.errors.push({ file: ctx.file, line, column: col, path: displayPath(path), message });
}

/** The node's value as plain data, for `got …` in messages. */
function plain(node: Node | null): unknown {
  if (isScalar(node)) return node.value;
  if (isSeq(node)) return [];
  if (isMap(node)) return {};
  return null;
}
export const got = (node: Node | null) => `got ${describeValue(plain(node))}`;

/** Resolves aliases and records the node under its path before running `body`. */
export function define<T>(body: (node: Node | null, path: PathSegment[], ctx: CheckContext) => T | undefined): Check<T> {
  return (node, path, ctx) => {
    const target = isAlias(node) ? (node.resolve(ctx.doc) ?? null) : node;
    if (isAlias(node) && !target) {
      report(ctx, node, path, `unknown alias *${node.source}`);
      return undefined;
    }
    if (target) ctx.nodes.set(formatPath(path), target);
    return body(target, path, ctx);
  };
}

function refined<T, V>(value: V, refine: ((v: V) => T | Invalid) | undefined, node: Node | null, path: PathSegment[], ctx: CheckContext): T | undefined {
  const out = refine ? refine(value) : (value as unknown as T);
  if (!isInvalid(out)) return out;
  report(ctx, node, path, out.invalid);
  return undefined;
}

export function string<T = string>(refine?: (s: string) => T | Invalid): Check<T> {
  return define((node, path, ctx) => {
    if (isScalar(node) && typeof node.value === 'string') return refined(node.value, refine, node, path, ctx);
    // `env: { TF_LOG_LEVEL: 1 }` is a number to YAML; say how to make it a string.
    const quoteHint = isScalar(node) && node.value !== null ? ` (quote it: ${quote(node.source ?? String(node.value))})` : '';
    report(ctx, node, path, `must be a string, ${got(node)}${quoteHint}`);
    return undefined;
  });
}

export function integer(min: number): Check<number> {
  const expected = min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
  return define((node, path, ctx) => {
    if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value) && node.value >= min) return node.value;
    report(ctx, node, path, `must be ${expected}, ${got(node)}`);
    return undefined;
  });
}

export function boolean(): Check<boolean> {
  return define((node, path, ctx) => {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    report(ctx, node, path, `must be true or false, ${got(node)}`);
    return undefined;
  });
}

/** One of a few literal values (strings or numbers), with a suggestion for near misses. */
export function oneOf<const T extends string | number>(values: readonly T[]): Check<T> {
  const listed = values.map((v) => JSON.stringify(v)).join(', ');
  return define((node, path, ctx) => {
    const value = isScalar(node) ? node.value : undefined;
    if ((values as readonly unknown[]).includes(value)) return value as T;
    const near = typeof value === 'string' ? closestMatch(value, values.filter((v) => typeof v === 'string')) : undefined;
    const expected = values.length === 1 ? `must be ${listed}` : `must be one of ${listed}`;
    report(ctx, node, path, `${expected}, ${got(node)}${near ? `; did you mean ${JSON.stringify(near)}?` : ''}`);
    return undefined;
  });
}

export function list<T>(item: Check<T>): Check<T[]> {
  return define((node, path, ctx) => {
    if (!isSeq(node)) {
      report(ctx, node, path, `must be a list, ${got(node)}`);
      return undefined;
    }
    const out: T[] = [];
    node.items.forEach((child, i) => {
      const value = item(child as Node | null, [...path, i], ctx);
      if (value !== undefined) out.push(value);
    });
    return out;
  });
}

/** A list whose valid items keep their position in the file, for messages about them later. */
export function indexedList<T>(item: Check<T>): Check<{ index: number; value: T }[]> {
  return define((node, path, ctx) => {
    if (!isSeq(node)) {
      report(ctx, node, path, `must be a list, ${got(node)}`);
      return undefined;
    }
    const out: { index: number; value: T }[] = [];
    node.items.forEach((child, index) => {
      const value = item(child as Node | null, [...path, index], ctx);
      if (value !== undefined) out.push({ index, value });
    });
    return out;
  });
}

/** A single string is shorthand for a list of one. */
export function stringOrList<T>(item: Check<T>): Check<T[]> {
  const asList = list(item);
  return define((node, path, ctx) => {
    if (isScalar(node) && typeof node.value === 'string') {
      const value = item(node, path, ctx);
      return value === undefined ? undefined : [value];
    }
    if (!isSeq(node)) {
      report(ctx, node, path, `must be a string or a list of strings, ${got(node)}`);
      return undefined;
    }
    return asList(node, path, ctx);
  });
}

function keyName(key: unknown): string | undefined {
  return isScalar(key) && (typeof key.value === 'string' || typeof key.value === 'number') ? String(key.value) : undefined;
}

/** A mapping with free-form keys (env, inputs). `refineKey` errors point at the key. */
export function mapOf<T>(value: Check<T>, refineKey?: (k: string) => Invalid | undefined): Check<Record<string, T>> {
  return define((node, path, ctx) => {
    if (!isMap(node)) {
      report(ctx, node, path, `must be a mapping, ${got(node)}`);
      return undefined;
    }
    const out: Record<string, T> = {};
    for (const pair of node.items) {
      const key = keyName(pair.key);
      if (key === undefined) {
        report(ctx, pair.key as Node, path, 'keys must be strings');
        continue;
      }
      const problem = refineKey?.(key);
      if (problem) {
        report(ctx, pair.key as Node, [...path, key], problem.invalid);
        continue;
      }
      if (hasNoValue(pair, [...path, key], ctx)) continue;
      const v = value(pair.value as Node, [...path, key], ctx);
      if (v !== undefined) out[key] = v;
    }
    return out;
  });
}

// `? key` with no `: value` leaves the pair without a value node to point at; point at the key.
function hasNoValue(pair: { key: unknown; value: unknown }, path: PathSegment[], ctx: CheckContext): boolean {
  if (pair.value) return false;
  report(ctx, pair.key as Node, path, 'has no value');
  return true;
}

type Fields = Record<string, Check<unknown>>;
export type ObjectOf<F extends Fields> = { [K in keyof F]?: F[K] extends Check<infer T> ? T : never };

export interface ObjectOptions<F extends Fields> {
  required?: (keyof F & string)[];
  /** Keys that exist elsewhere but not here, with the reason shown instead of "unknown key". */
  notHere?: Record<string, string>;
  /** At least one of these must be present. */
  oneOfRequired?: (keyof F & string)[];
}

/** A mapping with known keys. Unknown keys are errors that name the closest known key. */
export function object<F extends Fields>(fields: F, opts: ObjectOptions<F> = {}): Check<ObjectOf<F>> {
  const known = Object.keys(fields);
  return define((node, path, ctx) => {
    if (!isMap(node)) {
      report(ctx, node, path, `must be a mapping, ${got(node)}`);
      return undefined;
    }
    const out: Record<string, unknown> = {};
    const present = new Set<string>();
    for (const pair of node.items) {
      const key = keyName(pair.key);
      if (key === undefined) {
        report(ctx, pair.key as Node, path, 'keys must be strings');
        continue;
      }
      present.add(key);
      const check = Object.hasOwn(fields, key) ? fields[key] : undefined;
      if (!check) {
        report(ctx, pair.key as Node, [...path, key], unknownKeyMessage(key, known, opts.notHere));
        continue;
      }
      if (hasNoValue(pair, [...path, key], ctx)) continue;
      const value = check(pair.value as Node, [...path, key], ctx);
      if (value !== undefined) out[key] = value;
    }
    for (const key of opts.required ?? []) {
      if (!present.has(key)) report(ctx, node, path, `missing required key \`${key}\``);
    }
    const anyOf = opts.oneOfRequired;
    if (anyOf && !anyOf.some((k) => present.has(k))) {
      report(ctx, node, path, `needs at least one of ${anyOf.map((k) => `\`${k}\``).join(', ')}`);
    }
    return out as ObjectOf<F>;
  });
}

function unknownKeyMessage(key: string, known: string[], notHere: Record<string, string> = {}): string {
  if (Object.hasOwn(notHere, key)) return notHere[key];
  const near = closestMatch(key, known);
  if (near) return `unknown key; did you mean \`${near}\`?`;
  return `unknown key; expected one of ${known.map((k) => `\`${k}\``).join(', ')}`;
}
