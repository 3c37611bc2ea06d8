// Every scenario under test/scenarios/<name>/ as its own test, on one real harness: the fixture repo in
// repo/, the steps in scenario.yml, and every text the bot writes compared, in order, with expected/*.md.
// A comment missing, extra, or different in one character fails. UPDATE_GOLDEN=1 rewrites the expected
// files (review the diff); the list of comments each step expects is scenario.yml's and never rewritten.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { OWNER, listScenarios, runScenario } from './runner.ts';

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

/**
 * After a failed scenario, its workflows still running are terminated: an activity retrying a call the
 * mock refused would otherwise keep reaching GitHub while the next scenario runs, and fail it too.
 */
async function stopWorkflowsOf(name: string): Promise<void> {
  const mine = new RegExp(`^[\\w-]+:${OWNER}/${name}[:#]`);
  for await (const w of h.env.client.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
    if (mine.test(w.workflowId)) await h.env.client.workflow.getHandle(w.workflowId, w.runId).terminate('scenario failed').catch(() => {});
  }
}

describe('scenarios', () => {
  for (const scenario of listScenarios()) {
    test(`${scenario.name}: ${scenario.file.description.trim().split('\n')[0]}`, async () => {
      try {
        await runScenario(h, scenario, tmp);
      } catch (err) {
        await stopWorkflowsOf(scenario.name);
        throw err;
      }
    }, 300_000);
  }
});
