// Replays recorded workflow histories against the current workflow code. A failure here means a change
// would break runs already in flight: guard it with patched() instead of re-recording.
// Histories are `temporal workflow show --output json` exports. `npm run record:histories` records one
// set per scenario of test/scenarios/ (<scenario>.<workflowType>[.<n>].json), every workflow type the
// scenario ran included; the files without a workflow type in their name were recorded by older code
// (see recordHistory in pr.test.ts) and are kept: they prove that patched() keeps older runs replaying.
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from '@temporalio/worker';
import { describe, expect, test } from 'vitest';
import { WORKFLOWS_PATH } from '../../app/worker.ts';
import * as workflows from '../../workflows/index.ts';

const dir = new URL('../fixtures/histories/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const histories = files.map((file) => {
  // Passed as parsed JSON: the worker converts it with its own copy of the protobuf types.
  const history = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
  const type: string | undefined = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  return { file, history, type };
});
/** Every workflow type the worker registers: what workflows/index.ts exports. */
const workflowTypes = Object.entries(workflows)
  .filter(([, value]) => typeof value === 'function')
  .map(([name]) => name)
  .sort();

describe('recorded workflow histories', () => {
  test('every workflow type exported by workflows/index.ts has a recorded history', () => {
    expect(workflowTypes.length).toBeGreaterThanOrEqual(6);
    const recorded = new Set(histories.map((h) => h.type));
    // A new workflow type needs a scenario that runs it, recorded with `npm run record:histories`.
    expect(workflowTypes.filter((t) => !recorded.has(t))).toEqual([]);
  });

  test('each history starts a known workflow type, the one its file name says', () => {
    const wrong = histories.flatMap(({ file, type }) => {
      const named = /^[^.]+\.([A-Za-z]\w*)(\.\d+)?\.json$/.exec(file)?.[1];
      if (!type || !workflowTypes.includes(type)) return [`${file}: starts ${type ?? 'no workflow'}`];
      if (named !== undefined && named !== type) return [`${file}: named ${named}, starts ${type}`];
      return [];
    });
    expect(wrong).toEqual([]);
  });

  test('every recorded history replays deterministically', async () => {
    const outcomes: Record<string, string> = {};
    const input = histories.map(({ file, history }) => ({ workflowId: file, history }));
    for await (const result of Worker.runReplayHistories({ workflowsPath: WORKFLOWS_PATH }, input)) {
      outcomes[result.workflowId] = result.error ? String(result.error) : 'ok';
    }
    expect(outcomes).toEqual(Object.fromEntries(files.map((f) => [f, 'ok'])));
  });
});
