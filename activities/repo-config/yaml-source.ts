// A YAML file as plain data for the JSON Schema, with the way back from a data path (a JSON pointer, as
// ajv's `instancePath`) to the node it came from, so every error carries the file's line and column.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { displayPath, formatPath, type PathSegment } from './errors.ts';
import type { ConfigError } from '../../shared/config.ts';

interface Entry {
  path: PathSegment[];
  /** The value's node; null for `? key` with no value. */
  value: Node | null;
  /** The key's node; null for the document and list items. */
  key: Node | null;
}

export interface YamlSource {
  file: string;
  /** The document as JSON-like data (aliases expanded); undefined for an empty file. */
  data: unknown;
  /** Where the value at `pointer` was written; its key when it has no value. */
  valueAt(pointer: string): Position;
  /** Where the key of the value at `pointer` was written (for unknown keys); the value when it has no key. */
  keyAt(pointer: string): Position;
  /** The data path of `pointer` (`/projects/0/dir` → `['projects', 0, 'dir']`). */
  pathOf(pointer: string): PathSegment[];
  /** The YAML source of a scalar (`1`, `true`), for "quote it" hints. */
  sourceAt(pointer: string): string | undefined;
  has(pointer: string): boolean;
  /** Every value's position by formatted path (`projects[1].dir`). */
  positions(): Map<string, Position>;
  error(pointer: string, message: string, at?: 'key' | 'value'): ConfigError;
}

export interface Position {
  line: number;
  column: number;
}

/** `['projects', 0, 'a/b']` → `/projects/0/a~1b`, as ajv writes `instancePath`. */
export function pointerOf(path: readonly PathSegment[]): string {
  return path.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

export type ReadResult = { source: YamlSource; errors: [] } | { source?: undefined; errors: ConfigError[] };

/** Syntax first: a half-parsed document would only give noise, so its errors come alone. */
export function readYaml(text: string, file: string): ReadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (node: Node | null | undefined): Position => {
    const { line, col } = lines.linePos(node?.range?.[0] ?? 0);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    return {
      errors: doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        // yaml's own wording for this one names its API.
        const message = e.code === 'MULTIPLE_DOCS' ? 'the file must hold a single YAML document (remove `---`)' : e.message;
        return { file, line, column: col, path: '', message: `invalid YAML: ${message}` };
      }),
    };
  }
  const structural = structuralErrors(doc, file, at);
  if (structural.length > 0) return { errors: structural };

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? undefined;
  } catch (err) {
    return { errors: [{ file, line: 1, column: 1, path: '', message: `invalid YAML: ${(err as Error).message}` }] };
  }

  const entries = new Map<string, Entry>();
  const walk = (node: Node | null, entry: Omit<Entry, 'value'>) => {
    const target = isAlias(node) ? ((node.resolve(doc) as Node | undefined) ?? null) : node;
    entries.set(pointerOf(entry.path), { ...entry, value: target });
    if (isMap(target)) {
      for (const pair of target.items) {
        const key = pair.key as Node;
        walk(pair.value as Node | null, { path: [...entry.path, String((key as { value: unknown }).value)], key });
      }
    } else if (isSeq(target)) {
      target.items.forEach((item, i) => walk(item as Node | null, { path: [...entry.path, i], key: null }));
    }
  };
  walk(doc.contents as Node | null, { path: [], key: null });

  const entry = (pointer: string) => entries.get(pointer);
  const valueAt = (pointer: string) => at(entry(pointer)?.value ?? entry(pointer)?.key);
  const keyAt = (pointer: string) => at(entry(pointer)?.key ?? entry(pointer)?.value);
  const source: YamlSource = {
    file,
    data,
    valueAt,
    keyAt,
    pathOf: (pointer) => entry(pointer)?.path ?? pointer.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~')),
    sourceAt: (pointer) => {
      const node = entry(pointer)?.value;
      return isScalar(node) ? node.source : undefined;
    },
    has: (pointer) => entries.has(pointer),
    positions: () => new Map([...entries.values()].map((e) => [formatPath(e.path), at(e.value ?? e.key)])),
    error: (pointer, message, where = 'value') => ({
      file,
      ...(where === 'key' ? keyAt(pointer) : valueAt(pointer)),
      path: displayPath(source.pathOf(pointer)),
      message,
    }),
  };
  return { source, errors: [] };
}

/** What parses as YAML but cannot become data: aliases to no anchor, keys that are lists or mappings. */
function structuralErrors(doc: Document, file: string, at: (node: Node | null | undefined) => Position): ConfigError[] {
  const errors: ConfigError[] = [];
  const report = (node: Node, ancestors: readonly unknown[], last: unknown, message: string) =>
    errors.push({ file, ...at(node), path: displayPath(pathFromAncestors([...ancestors, last])), message });
  visit(doc, {
    Alias(_, node, ancestors) {
      if (!node.resolve(doc)) report(node, ancestors, node, `unknown alias *${node.source}`);
    },
    Pair(_, pair, ancestors) {
      // The path is the mapping's: the key has no name to show.
      if (pair.key !== null && !isScalar(pair.key) && !isAlias(pair.key)) report(pair.key as Node, ancestors, pair, 'keys must be strings');
    },
  });
  return errors;
}

function pathFromAncestors(chain: readonly unknown[]): PathSegment[] {
  const path: PathSegment[] = [];
  chain.forEach((item, i) => {
    if (isPair(item) && isScalar(item.key) && chain[i + 1] !== item.key) path.push(String(item.key.value));
    else if (isSeq(item)) path.push(item.items.indexOf(chain[i + 1] as never));
  });
  return path;
}
