// ajv's errors in the project's words: one error per problem, at the line and column of the YAML node it is
// about (the key, for keys that do not belong), with what was expected and what was found.
import type { ErrorObject } from 'ajv';
import { closestMatch, describeValue, quote } from './errors.ts';
import { CRON_EXPECTED, cronProblem } from './schedule.ts';
import { pointerOf, type YamlSource } from './yaml-source.ts';
import type { ConfigError } from '../../shared/config.ts';

interface Schema {
  type?: string | string[];
  minimum?: number;
  properties?: Record<string, Schema>;
  not?: object;
  errorMessage?: string;
  patternErrorMessage?: string;
  'x-unknownKey'?: string;
}

/** An ajv error from a validator compiled with `verbose: true`. */
type Verbose = ErrorObject & { parentSchema: Schema; data: unknown; propertyName?: string };

export interface SchemaProblems {
  errors: ConfigError[];
  /** Pointers of the values (or keys) found wrong, so later checks can leave them out. */
  invalid: string[];
}

export function schemaErrors(raw: readonly ErrorObject[], source: YamlSource): SchemaProblems {
  const kept = onePerNode(collapseAlternatives(raw as Verbose[]));
  const invalid = [...new Set(kept.filter((e) => e.keyword !== 'required').map(target))];
  // A key with a bad name gets that one error, not also one about its value.
  const badKeys = kept.filter((e) => e.propertyName !== undefined).map(target);
  const errors = new Map<string, ConfigError>();
  for (const e of kept) {
    if (e.propertyName === undefined && badKeys.some((k) => e.instancePath.startsWith(`${k}/`) || e.instancePath === k)) continue;
    const error = toConfigError(e, source);
    errors.set(`${error.line}:${error.column}:${error.path}:${error.message}`, error);
  }
  return { errors: [...errors.values()], invalid };
}

/** The pointer of what an error is about: the named key for unknown keys and bad key names. */
function target(e: Verbose): string {
  if (e.propertyName !== undefined) return `${e.instancePath}${pointerOf([e.propertyName])}`;
  if (e.keyword === 'additionalProperties') return `${e.instancePath}${pointerOf([String(e.params.additionalProperty)])}`;
  return e.instancePath;
}

const jsonType = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' && Number.isInteger(v) ? 'integer' : typeof v);

function fitsType(schema: Schema, data: unknown): boolean {
  if (schema.type === undefined) return true;
  const actual = jsonType(data);
  return [schema.type].flat().some((t) => t === actual || (t === 'number' && actual === 'integer'));
}

/**
 * `oneOf`/`anyOf` report every branch's complaints. The branch whose type fits the value is the one that
 * was meant: keep its errors alone. With no such branch (or several), the alternative's own message.
 * Branches are written inline in the schemas (no `$ref`), so an error belongs to a branch by identity.
 */
function collapseAlternatives(errors: Verbose[]): Verbose[] {
  const dropped = new Set<Verbose>();
  for (const alt of errors) {
    if (alt.keyword !== 'oneOf' && alt.keyword !== 'anyOf') continue;
    const branches = alt.schema as Schema[];
    const fitting = branches.filter((b) => fitsType(b, alt.data));
    const chosen = fitting.length === 1 ? fitting[0] : undefined;
    for (const e of errors) {
      if (e !== alt && e.instancePath === alt.instancePath && branches.includes(e.parentSchema) && e.parentSchema !== chosen) dropped.add(e);
    }
    if (chosen) dropped.add(alt);
  }
  return errors.filter((e) => !dropped.has(e));
}

/** A value of the wrong type or shape gets that one error; otherwise one per key, and one about the value. */
function onePerNode(errors: Verbose[]): Verbose[] {
  const byNode = new Map<string, Verbose[]>();
  for (const e of errors) {
    const group = byNode.get(e.instancePath);
    if (group) group.push(e);
    else byNode.set(e.instancePath, [e]);
  }
  const out: Verbose[] = [];
  for (const group of byNode.values()) {
    const decisive = group.find((e) => e.keyword === 'type') ?? group.find((e) => e.keyword === 'maxProperties' || e.keyword === 'minProperties');
    if (decisive) {
      out.push(decisive);
      continue;
    }
    let valueError = false;
    for (const e of group) {
      if (e.keyword === 'propertyNames') continue; // its inner error names the key
      const perKey = e.keyword === 'required' || e.keyword === 'additionalProperties' || e.propertyName !== undefined || e.keyword === 'anyOf' || e.keyword === 'oneOf';
      if (!perKey && valueError) continue;
      valueError ||= !perKey;
      out.push(e);
    }
  }
  return out;
}

function toConfigError(e: Verbose, source: YamlSource): ConfigError {
  const at = e.instancePath;
  const schema = e.parentSchema;
  const got = `got ${describeValue(e.data)}`;
  switch (e.keyword) {
    case 'type':
      return source.error(at, typeMessage(String(e.params.type), schema, e.data, source.sourceAt(at)));
    case 'minimum':
    case 'exclusiveMinimum':
      return source.error(at, `${integerExpected(schema)}, ${got}`);
    case 'enum':
      return source.error(at, enumMessage(e.params.allowedValues as unknown[], e.data));
    case 'const':
      return source.error(at, enumMessage([e.params.allowedValue], e.data));
    case 'pattern': {
      const expected = schema.patternErrorMessage ?? 'has the wrong form';
      if (e.propertyName === undefined) return source.error(at, `${expected}, ${got}`);
      return source.error(`${at}${pointerOf([e.propertyName])}`, `${expected}, got ${quote(e.propertyName)}`, 'key');
    }
    case 'format':
      if (e.params.format === 'cron') return source.error(at, cronProblem(String(e.data)) ?? CRON_EXPECTED);
      return source.error(at, `must be ${String(e.params.format)}, ${got}`);
    case 'required':
      return source.error(at, `missing required key \`${String(e.params.missingProperty)}\``);
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      return source.error(`${at}${pointerOf([key])}`, unknownKeyMessage(key, schema), 'key');
    }
    case 'not':
      return source.error(at, schema.errorMessage ?? 'is not allowed here', 'key');
    case 'minProperties':
    case 'maxProperties': {
      const count = Object.keys(e.data as object).length;
      return source.error(at, `${schema.errorMessage ?? `must have ${e.keyword === 'minProperties' ? 'at least' : 'at most'} ${String(e.params.limit)} keys`}, got a mapping with ${count} ${count === 1 ? 'key' : 'keys'}`);
    }
    case 'oneOf':
    case 'anyOf': {
      const fitsNone = !(e.schema as Schema[]).some((b) => fitsType(b, e.data));
      return source.error(at, `${schema.errorMessage ?? 'does not have one of the accepted forms'}${fitsNone ? `, ${got}` : ''}`);
    }
    default:
      return source.error(at, `is not valid here (${e.keyword}), ${got}`);
  }
}

function integerExpected(schema: Schema): string {
  if (schema.minimum === 1) return 'must be a positive integer';
  return schema.minimum === undefined ? 'must be an integer' : `must be an integer ≥ ${schema.minimum}`;
}

function typeMessage(type: string, schema: Schema, data: unknown, written: string | undefined): string {
  const got = `got ${describeValue(data)}`;
  switch (type) {
    case 'string': {
      // `env: { TF_LOG_LEVEL: 1 }` is a number to YAML; say how to make it a string.
      const scalar = data !== null && typeof data !== 'object';
      return `must be a string, ${got}${scalar ? ` (quote it: ${quote(written ?? String(data))})` : ''}`;
    }
    case 'array':
      return `must be a list, ${got}`;
    case 'object':
      return `must be a mapping, ${got}`;
    case 'boolean':
      return `must be true or false, ${got}`;
    case 'integer':
      return `${integerExpected(schema)}, ${got}`;
    default:
      return `must be ${type}, ${got}`;
  }
}

/** One of a few literal values, with a suggestion for near misses. */
function enumMessage(values: readonly unknown[], data: unknown): string {
  const listed = values.map((v) => JSON.stringify(v)).join(', ');
  const expected = values.length === 1 ? `must be ${listed}` : `must be one of ${listed}`;
  const near = typeof data === 'string' ? closestMatch(data, values.filter((v) => typeof v === 'string')) : undefined;
  return `${expected}, got ${describeValue(data)}${near ? `; did you mean ${JSON.stringify(near)}?` : ''}`;
}

/** Keys that exist only to say they do not belong here (`{ not: {} }`) are not offered. */
function unknownKeyMessage(key: string, schema: Schema): string {
  const known = Object.entries(schema.properties ?? {})
    .filter(([, s]) => s.not === undefined)
    .map(([k]) => k);
  const head = schema['x-unknownKey'] ?? 'unknown key';
  const near = closestMatch(key, known);
  if (near) return `${head}; did you mean \`${near}\`?`;
  return `${head}; expected one of ${known.map((k) => `\`${k}\``).join(', ')}`;
}
