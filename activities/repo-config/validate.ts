// YAML text → data checked against a JSON Schema, errors in the project's words with file:line:col.
import type { ValidateFunction } from 'ajv';
import { schemaErrors } from './schema-errors.ts';
import { readYaml, type YamlSource } from './yaml-source.ts';
import type { ConfigError } from '../../shared/config.ts';

export interface Validated {
  source?: YamlSource;
  /** The data without the values the schema rejected (list items become undefined, keeping indexes), for the checks that follow. */
  data?: unknown;
  errors: ConfigError[];
}

export function validateYaml(text: string, file: string, validate: ValidateFunction): Validated {
  const read = readYaml(text, file);
  if (!read.source) return { errors: read.errors };
  const source = read.source;
  // An empty file is a file with no settings.
  const data = source.data ?? {};
  if (validate(data)) return { source, data, errors: [] };
  const { errors, invalid } = schemaErrors(validate.errors ?? [], source);
  return { source, data: without(data, invalid), errors };
}

function without(data: unknown, pointers: string[]): unknown {
  if (pointers.includes('')) return undefined;
  const copy = structuredClone(data);
  for (const pointer of pointers) {
    const path = pointer.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = path.pop()!;
    let parent: unknown = copy;
    for (const seg of path) parent = (parent as Record<string, unknown> | undefined)?.[seg];
    if (Array.isArray(parent)) parent[Number(last)] = undefined;
    else if (parent && typeof parent === 'object') delete (parent as Record<string, unknown>)[last];
  }
  return copy;
}
