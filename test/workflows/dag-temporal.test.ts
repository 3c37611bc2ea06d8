// runDag inside a real workflow on a real dev server: activities run with the configured parallelism,
// dependencies hold, and the recorded history replays (the runner is deterministic).
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestServer } from '../helpers/temporal-cli.ts';
import type { DagTestActivities, DagWorkflowInput, DagWorkflowResult } from './fixtures/dag-workflow.ts';
import { quietBundlerLogger } from '../helpers/bundler-logger.ts';

const workflowsPath = fileURLToPath(new URL('./fixtures/dag-workflow.ts', import.meta.url));
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
});
afterAll(async () => {
  await env?.teardown();
});

it('runs a DAG of activities with bounded parallelism and replays its history', async () => {
  const spans = new Map<string, { start: number; end: number }>();
  let running = 0;
  let maxRunning = 0;
  const activities: DagTestActivities = {
    async work(name, ms, failing) {
      maxRunning = Math.max(maxRunning, ++running);
      const start = Date.now();
      await new Promise((r) => setTimeout(r, ms));
      spans.set(name, { start, end: Date.now() });
      running--;
      if (failing) throw ApplicationFailure.nonRetryable(`${name} failed on purpose`);
      return name;
    },
  };
  const input: DagWorkflowInput = {
    nodes: [
      { name: 'top', dependsOn: [] },
      { name: 'left', dependsOn: ['top'] },
      { name: 'right', dependsOn: ['top'] },
      { name: 'bottom', dependsOn: ['left', 'right'] },
      { name: 'c1', dependsOn: [] },
      { name: 'c2', dependsOn: ['c1'] },
      { name: 'c3', dependsOn: ['c2'] },
      { name: 'broken', dependsOn: [] },
      { name: 'never', dependsOn: ['broken'] },
    ],
    parallelism: 2,
    durationsMs: { top: 100, left: 300, right: 600, bottom: 100, c1: 900, c2: 400, c3: 100, broken: 50 },
    failing: ['broken'],
  };

  const taskQueue = `dag-test-${randomUUID()}`;
  const workflowBundle = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle, activities });
  const workflowId = `dag-${randomUUID()}`;
  const result = await worker.runUntil(
    env.client.workflow.execute('dagWorkflow', { taskQueue, workflowId, args: [input] }) as Promise<DagWorkflowResult>,
  );

  expect(result.statuses).toEqual({
    top: 'succeeded',
    left: 'succeeded',
    right: 'succeeded',
    bottom: 'succeeded',
    c1: 'succeeded',
    c2: 'succeeded',
    c3: 'succeeded',
    broken: 'failed',
    never: 'skipped',
  });
  expect(result.maxInFlight).toBe(2);
  expect(maxRunning).toBe(2);
  // Every activity started only after all of its upstreams' activities had finished.
  for (const node of input.nodes) {
    for (const dep of node.dependsOn) {
      if (spans.has(node.name)) expect(spans.get(node.name)!.start).toBeGreaterThanOrEqual(spans.get(dep)!.end);
    }
  }
  // top and c1 first; left then right (topological order) take top's slot in turn while c1 still runs.
  expect(result.started.slice(0, 4)).toEqual(['top', 'c1', 'left', 'right']);
  expect(spans.has('never')).toBe(false);

  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  await expect(Worker.runReplayHistory({ workflowBundle }, history, workflowId)).resolves.toBeUndefined();
});
