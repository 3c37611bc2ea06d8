// The JSON Schemas of `.terrapin.yml` and of the operator's policy file, as published in schemas/ (editors
// read the same files). Compiled once per process, on first use.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { cronProblem } from './schedule.ts';

const load = (name: string) => JSON.parse(readFileSync(new URL(`../../schemas/${name}`, import.meta.url), 'utf8')) as { $id: string };

export const REPO_SCHEMA = load('terrapin.schema.json');
export const SERVER_SCHEMA = load('server-config.schema.json');

/** Keywords the schemas carry for people and editors; ajv only has to accept them. */
export const MESSAGE_KEYWORDS = ['patternErrorMessage', 'errorMessage', 'x-unknownKey'];

let ajv: Ajv2020 | undefined;

/** ajv compiles a schema on its first getSchema and keeps the function. */
function validator(schema: { $id: string }): ValidateFunction {
  ajv ??= createAjv();
  return ajv.getSchema(schema.$id)!;
}

function createAjv(): Ajv2020 {
  // allErrors: every problem in one pass; verbose: errors carry their schema, for our wording.
  const instance = new Ajv2020({ allErrors: true, verbose: true, strictTypes: false });
  instance.addVocabulary(MESSAGE_KEYWORDS);
  instance.addFormat('cron', { type: 'string', validate: (s: string) => cronProblem(s) === undefined });
  instance.addSchema([REPO_SCHEMA, SERVER_SCHEMA]);
  return instance;
}

export const repoConfigValidator = () => validator(REPO_SCHEMA);
export const serverConfigValidator = () => validator(SERVER_SCHEMA);
