// A YAML file as plain data for the JSON Schema, with the way back from a data path (a JSON pointer, as
// ajv's `instancePath`) to the node it came from, so every error carries the file's line and column.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { appendPath, displayPath, type PathSegment } from './errors.ts';
import type { ConfigError } from '../../shared/config.ts';

export interface Position {
  line: number;
  column: number;
}

interface Entry {
  parent: Entry | null;
  /** The key or index under `parent`; null for the document. */
  segment: PathSegment | null;
  /** `formatPath` of the whole path, built along the way. */
  formatted: string;
  /** The value's node (aliases resolved); null for `? key` with no value. */
  value: Node | null;
  /** The key's node; null for the document and list items. */
  key: Node | null;
}

function pathOf(entry: Entry): PathSegment[] {
  const path: PathSegment[] = [];
  for (let e: Entry | null = entry; e?.segment != null; e = e.parent) path.push(e.segment);
  return path.reverse();
}

export interface YamlSource {
  file: string;
  /** The document as JSON-like data (aliases expanded); undefined for an empty file. */
  data: unknown;
  has(pointer: string): boolean;
  /** The YAML source of a scalar (`1`, `true`), for "quote it" hints. */
  sourceAt(pointer: string): string | undefined;
  /** Every value's position by formatted path (`projects[1].dir`). */
  positions(): Map<string, Position>;
  /** An error about the value at `pointer`, or about its key (unknown keys, bad names). */
  error(pointer: string, message: string, at?: 'key' | 'value'): ConfigError;
}

/** `['projects', 0, 'a/b']` → `/projects/0/a~1b`, as ajv writes `instancePath`. */
export function pointerOf(path: readonly PathSegment[]): string {
  return path.map(pointerSegment).join('');
}
function pointerSegment(s: PathSegment): string {
  const text = String(s);
  return text.includes('~') || text.includes('/') ? `/${text.replaceAll('~', '~0').replaceAll('/', '~1')}` : `/${text}`;
}

/** More values than a 256 KiB file can hold without aliases multiplying them. */
const MAX_VALUES = 200_000;

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

  const indexed = indexNodes(doc);
  if ('errors' in indexed) return { errors: indexed.errors.map(({ node, entry, message }) => ({ file, ...at(node), path: displayPath(pathOf(entry)), message })) };
  const { entries, data } = indexed;

  const source: YamlSource = {
    file,
    // An empty document is null to YAML.
    data: data ?? undefined,
    has: (pointer) => entries.has(pointer),
    sourceAt: (pointer) => {
      const node = entries.get(pointer)?.value;
      return isScalar(node) ? node.source : undefined;
    },
    positions: () => new Map([...entries.values()].map((e) => [e.formatted, at(e.value ?? e.key)])),
    error: (pointer, message, where = 'value') => {
      const e = entries.get(pointer);
      const node = where === 'key' ? (e?.key ?? e?.value) : (e?.value ?? e?.key);
      const path = e ? pathOf(e) : pointer.split('/').slice(1).map((seg) => seg.replaceAll('~1', '/').replaceAll('~0', '~'));
      return { file, ...at(node), path: displayPath(path), message };
    },
  };
  return { source, errors: [] };
}

type Problem = { node: Node; entry: Entry; message: string };

/**
 * The document as data (as `toJS` would make it) and every value's node by pointer, in one pass that
 * follows aliases. Also what parses as YAML but cannot become data: aliases to no anchor, keys that are
 * lists or mappings, aliases multiplied beyond any real file.
 */
function indexNodes(doc: Document): { entries: Map<string, Entry>; data: unknown } | { errors: Problem[] } {
  const entries = new Map<string, Entry>();
  const errors: Problem[] = [];
  const walk = (node: Node | null, pointer: string, entry: Entry): unknown => {
    if (entries.size >= MAX_VALUES) return null;
    if (isAlias(node)) {
      entry.value = (node.resolve(doc) as Node | undefined) ?? null;
      if (!entry.value) errors.push({ node, entry, message: `unknown alias *${node.source}` });
    }
    const value = entry.value;
    entries.set(pointer, entry);
    if (isMap(value)) {
      const out: Record<string, unknown> = {};
      for (const pair of value.items) {
        const k = (isAlias(pair.key) ? pair.key.resolve(doc) : pair.key) as Node | null;
        // The path is the mapping's: such a key has no name to show.
        if (k !== null && !isScalar(k)) {
          errors.push({ node: pair.key as Node, entry, message: 'keys must be strings' });
          continue;
        }
        const name = String(k?.value ?? '');
        const child: Entry = { parent: entry, segment: name, formatted: appendPath(entry.formatted, name), value: pair.value as Node | null, key: pair.key as Node };
        const v = walk(pair.value as Node | null, pointer + pointerSegment(name), child);
        // As toJS does: `__proto__` is a key like any other, never the object's prototype.
        if (name === '__proto__') Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
        else out[name] = v;
      }
      return out;
    }
    if (isSeq(value)) {
      return value.items.map((item, i) => walk(item as Node | null, `${pointer}/${i}`, { parent: entry, segment: i, formatted: `${entry.formatted}[${i}]`, value: item as Node | null, key: null }));
    }
    return isScalar(value) ? value.value : null;
  };
  const root: Entry = { parent: null, segment: null, formatted: '', value: doc.contents as Node | null, key: null };
  const data = walk(doc.contents as Node | null, '', root);
  if (entries.size >= MAX_VALUES) errors.push({ node: doc.contents as Node, entry: root, message: `invalid YAML: more than ${MAX_VALUES} values (aliases multiplying them?)` });
  return errors.length > 0 ? { errors } : { entries, data };
}
