// Records the workflow histories that test/workflows/replay.test.ts replays: runs scenarios of
// test/scenarios/ against the real harness (a Temporal dev server, the worker, git, terraform; GitHub
// mocked at HTTP, every call asserted), then saves the history of EVERY workflow execution the scenario
// left in the namespace — PR, lock, deploy, push, drift, reconcile and any child workflow — as
// test/fixtures/histories/<scenario>.<workflowType>.json (…<workflowType>.<n>.json when a scenario ran
// several executions of one type, numbered by workflow id, then start time).
//
//   npm run record:histories                   # every scenario below
//   npm run record:histories -- locks rollback # only these
//
// Each scenario gets its own dev server, so its namespace holds its executions only. A scenario's old
// files are deleted before its new ones are written: review the diff (a type that disappeared is a
// change too). Re-record after a change that is meant to change histories, and keep histories recorded
// by older code where they prove that patched() keeps runs in flight replaying.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startHarness } from '../test/helpers/workflow-harness.ts';
import { listScenarios, runScenario, type LoadedScenario } from '../test/scenarios/runner.ts';

const HISTORIES = fileURLToPath(new URL('../test/fixtures/histories/', import.meta.url));

/**
 * The situations whose histories are kept, by the scenario that plays each. Every workflow type of
 * workflows/index.ts must appear in at least one (test/workflows/replay.test.ts checks).
 */
const RECORDED: Record<string, string> = {
  'happy-path': 'PR: plan → refused commands → approve → apply → merge',
  rollback: 'PR: apply fails → rollback to the base branch',
  'multi-project-replan': 'PR with three projects: a downstream re-planned after its upstream applied',
  'apply-requirements': 'PR with two projects: apply order and a two-approval requirement',
  locks: 'two PRs contend for one project lock (the lock workflow’s runs too)',
  'deploy-after-merge': 'approved plan deployed after merge; the merge commit’s push left to the PR',
  'deploy-needs-approval': 'deploy of an unapproved merge waits, then is approved on the merged PR',
  'deploy-on-push': 'direct push to the default branch queues a deploy, approved on its check',
  drift: 'drift check opens the issue, /drift checks again, a clean check closes it',
  'drift-reconcile': 'drift fix-plan refused twice, then approved and applied on the issue',
  'operator-destroy': 'operator destroy refused for dependents, then with them behind the approval issue',
  'operator-projects': 'the operator tools read the projects at the default branch (operatorProjectsWorkflow)',
  'webhook-reconcile': 'the webhook reconciler sends failed deliveries again once, then asks for nothing (webhookReconcileWorkflow)',
};

interface Execution {
  workflowId: string;
  runId: string;
  type: string;
  startTime: number;
  status: string;
}

async function main(): Promise<void> {
  // The workers' state changes are logged at INFO: only warnings and errors here.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const wanted = process.argv.slice(2);
  const all = listScenarios();
  const unknown = wanted.filter((w) => !RECORDED[w]);
  if (unknown.length) throw new Error(`not a recorded scenario: ${unknown.join(', ')}; known: ${Object.keys(RECORDED).join(', ')}`);
  const chosen = all.filter((s) => RECORDED[s.name] && (wanted.length === 0 || wanted.includes(s.name)));
  const missing = Object.keys(RECORDED).filter((n) => !all.some((s) => s.name === n));
  if (missing.length) throw new Error(`no scenario dir for: ${missing.join(', ')}`);
  for (const scenario of chosen) await record(scenario);
}

async function record(scenario: LoadedScenario): Promise<void> {
  process.stdout.write(`${scenario.name}: ${RECORDED[scenario.name]}\n`);
  const h = await startHarness();
  const tmp = await mkdtemp(join(tmpdir(), 'terrapin-record-'));
  try {
    await h.startWorker();
    h.allowRunnerPath(tmp);
    await runScenario(h, scenario, tmp);
    const executions = await settledExecutions(h.env.client);
    // Only this recorder's names (<scenario>.<type>[.<n>].json): older recordings (e.g. rollback.json) stay.
    const ours = new RegExp(`^${scenario.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[A-Za-z]\\w*(\\.\\d+)?\\.json$`);
    for (const old of (await readdir(HISTORIES)).filter((f) => ours.test(f))) await rm(join(HISTORIES, old));
    const byType = new Map<string, Execution[]>();
    for (const e of executions) byType.set(e.type, [...(byType.get(e.type) ?? []), e]);
    for (const [type, runs] of [...byType.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      for (const [i, run] of runs.entries()) {
        const history = await h.env.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
        const file = runs.length === 1 ? `${scenario.name}.${type}.json` : `${scenario.name}.${type}.${i + 1}.json`;
        // The layout of `temporal workflow show --output json`: proto3 JSON, two-space indents.
        await writeFile(join(HISTORIES, file), `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`);
        process.stdout.write(`  ${file}  (${run.workflowId}, ${run.status.toLowerCase()}, ${history.events?.length ?? 0} events)\n`);
      }
    }
  } finally {
    await h.teardown();
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Every execution in the namespace, ordered by workflow id then start time. Visibility lags a little
 * behind the executions: read until two listings a second apart agree.
 */
async function settledExecutions(client: Awaited<ReturnType<typeof startHarness>>['env']['client']): Promise<Execution[]> {
  const read = async () => {
    const out: Execution[] = [];
    for await (const w of client.workflow.list()) {
      out.push({ workflowId: w.workflowId, runId: w.runId, type: w.type, startTime: w.startTime.getTime(), status: w.status.name });
    }
    return out.sort((a, b) => a.workflowId.localeCompare(b.workflowId) || a.startTime - b.startTime);
  };
  let last = JSON.stringify(await read());
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await read();
    if (JSON.stringify(now) === last) return now;
    last = JSON.stringify(now);
  }
  throw new Error('the namespace never settled');
}

await main();
