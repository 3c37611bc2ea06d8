// Every scenario under test/scenarios/<name>/ as its own test, on one real harness: the fixture repo in
// repo/, the steps in scenario.yml, and every text the bot writes compared, in order, with expected/*.md.
// A comment missing, extra, or different in one character fails. UPDATE_GOLDEN=1 rewrites the expected
// files (review the diff); the list of comments each step expects is scenario.yml's and never rewritten.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { listScenarios, runScenario } from './runner.ts';

let h: Harness;
let tmp: string;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-scenarios-'));
  // State files and by-hand checkouts live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('scenarios', () => {
  for (const scenario of listScenarios()) {
    test(`${scenario.name}: ${scenario.file.description.trim().split('\n')[0]}`, () => runScenario(h, scenario, tmp), 300_000);
  }
});
