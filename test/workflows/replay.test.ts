// Replays recorded PR workflow histories against the current workflow code. A failure here means a
// change would break runs already in flight: guard it with patched() instead of re-recording.
// Histories are `temporal workflow show --output json` exports (see recordHistory in pr.test.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from '@temporalio/worker';
import { expect, test } from 'vitest';
import { WORKFLOWS_PATH } from '../../app/worker.ts';

const dir = new URL('../fixtures/histories/', import.meta.url);

test('every recorded PR workflow history replays deterministically', async () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThanOrEqual(3);
  const histories = files.map((file) => ({
    workflowId: file,
    // Passed as parsed JSON: the worker converts it with its own copy of the protobuf types.
    history: JSON.parse(readFileSync(new URL(file, dir), 'utf8')),
  }));
  const outcomes: Record<string, string> = {};
  for await (const result of Worker.runReplayHistories({ workflowsPath: WORKFLOWS_PATH }, histories)) {
    outcomes[result.workflowId] = result.error ? String(result.error) : 'ok';
  }
  expect(outcomes).toEqual(Object.fromEntries(files.map((f) => [f, 'ok'])));
});
