// `npm run bench:cli [-- --runs 10000 --projects 50 --samples 7]`: how fast the CLI reads the run records.
//   - `terrapin history` over 10,000 recorded runs (target ≤ 1 s);
//   - `terrapin status` of a repository with 50 projects (target ≤ 2 s).
// A Temporal dev server (in-memory SQLite: seeding a file-backed one on a small machine takes many minutes) is seeded with completed `projectRun` workflows
// carrying Terrapin's search attributes (started on a throwaway task queue, ended by a trivial worker), spread
// over the projects of one repository. Each figure is the wall time of the real CLI as a subprocess
// (`node bin/terrapin.mjs …`, Node start-up included), median of the samples; the library call alone is
// shown next to it. Figures are printed, not asserted.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { findTemporalCli, startDevServer } from '../app/temporal.ts';
import { SEARCH_ATTRIBUTES, searchAttributePairs, type RunRecord } from '../shared/records.ts';
import { PROJECT_RUN_WORKFLOW_TYPE, runWorkflowId, type RunKind } from '../shared/runs.ts';
import { listRuns } from '../operator/records.ts';
import { repositoryStatus } from '../operator/status.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OWNER = 'acme';
const REPO = 'bench';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} wants a positive integer, got ${process.argv[i + 1]}`);
  return n;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;

async function mapLimit<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

async function main(): Promise<void> {
  const runs = arg('runs', 10_000);
  const projects = arg('projects', 50);
  const samples = arg('samples', 7);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dir = mkdtempSync(join(tmpdir(), 'terrapin-bench-cli-'));
  const cli = findTemporalCli();
  const env = await startDevServer({
    server: {
      executable: cli ? { type: 'existing-path', path: cli } : { type: 'cached-download' },
      searchAttributes: Object.values(SEARCH_ATTRIBUTES),
      log: { format: 'json', level: 'warn' },
    },
  });
  try {
    const address = env.address;
    const client = env.client;
    process.stdout.write(`machine: ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}; Temporal dev server (in-memory) at ${address}\n`);

    // Seed: `runs` completed projectRun workflows over `projects` projects, kinds and outcomes mixed.
    const taskQueue = 'bench-cli-records';
    const worker = await Worker.create({
      connection: await NativeConnection.connect({ address }),
      taskQueue,
      workflowsPath: fileURLToPath(new URL('./bench-cli-workflows.ts', import.meta.url)),
      maxConcurrentWorkflowTaskExecutions: 100,
    });
    const running = worker.run();
    const kinds: RunKind[] = ['plan', 'plan', 'apply', 'drift'];
    const outcomes: Record<RunKind, string[]> = { plan: ['planned', 'no-changes'], apply: ['applied', 'apply-failed'], drift: ['clean', 'drifted'], rollback: ['rolled-back'], destroy: ['applied'] };
    const t0 = performance.now();
    await mapLimit(Array.from({ length: runs }, (_, i) => i), 32, async (i) => {
      const kind = kinds[i % kinds.length]!;
      const project = `app-${i % projects}`;
      const sha = (i * 2654435761 >>> 0).toString(16).padStart(8, '0').repeat(5);
      const record: RunRecord = {
        repository: `${OWNER}/${REPO}`,
        project,
        kind,
        trigger: kind === 'drift' ? 'drift' : 'pr',
        pr: 1 + (i % 300),
        actor: ['alice', 'bob', 'carol'][i % 3],
        headSha: sha,
        outcome: outcomes[kind][i % 2]!,
        ...(kind === 'apply' ? { approvers: ['bob'] } : {}),
        ...(kind === 'plan' ? { counts: { add: i % 3, change: i % 2, destroy: 0 } } : {}),
      };
      await client.workflow.start(PROJECT_RUN_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: runWorkflowId({ owner: OWNER, name: REPO }, project, kind, sha, i),
        typedSearchAttributes: searchAttributePairs(record),
      });
    });
    // Done when visibility lists every run as completed (waiting on each result would hold a poller per run).
    const query = `WorkflowType = '${PROJECT_RUN_WORKFLOW_TYPE}' AND ExecutionStatus = 'Completed'`;
    while ((await client.workflow.count(query)).count < runs) await new Promise((r) => setTimeout(r, 200));
    const seeded = performance.now() - t0;
    worker.shutdown();
    await running;
    process.stdout.write(`seeded ${runs} completed runs over ${projects} projects of ${OWNER}/${REPO} in ${(seeded / 1000).toFixed(1)} s; load now ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n\n`);

    const childEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TEMPORAL_ADDRESS: address, TERRAPIN_DATA_DIR: dir };
    const timeCli = async (args: string[]) => {
      const times: number[] = [];
      let last = '';
      for (let i = 0; i < samples + 1; i++) {
        const start = performance.now();
        const r = await execa(process.execPath, [join(ROOT, 'bin/terrapin.mjs'), ...args], { env: childEnv, extendEnv: false, reject: false });
        const ms = performance.now() - start;
        if (r.exitCode !== 0) throw new Error(`terrapin ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
        if (i > 0) times.push(ms); // the first warms the page cache, not counted
        last = r.stdout;
      }
      return { times, last };
    };
    const timeCall = async (fn: () => Promise<unknown>) => {
      const times: number[] = [];
      for (let i = 0; i < samples + 1; i++) {
        const start = performance.now();
        await fn();
        if (i > 0) times.push(performance.now() - start);
      }
      return times;
    };

    const cases: Array<{ title: string; args: string[]; call: () => Promise<unknown>; target: number }> = [
      { title: `history -r ${OWNER}/${REPO} (20 newest of ${runs})`, args: ['history', '-r', `${OWNER}/${REPO}`], call: () => listRuns(client, { repository: `${OWNER}/${REPO}` }, 21), target: 1000 },
      { title: `history -p app-6 --kind apply --since 30d`, args: ['history', '-r', `${OWNER}/${REPO}`, '-p', 'app-6', '--kind', 'apply', '--since', '30d'], call: () => listRuns(client, { repository: `${OWNER}/${REPO}`, project: 'app-6', kinds: ['apply'], since: new Date(Date.now() - 30 * 86_400_000) }, 21), target: 1000 },
      { title: `history --limit 1000 --json (informational: one page of 1000 runs)`, args: ['history', '-r', `${OWNER}/${REPO}`, '--limit', '1000', '--json'], call: () => listRuns(client, { repository: `${OWNER}/${REPO}` }, 1001), target: Infinity },
      { title: `status -r ${OWNER}/${REPO} (${projects} projects)`, args: ['status', '-r', `${OWNER}/${REPO}`], call: () => repositoryStatus(client, { repository: `${OWNER}/${REPO}` }), target: 2000 },
    ];
    for (const c of cases) {
      const { times, last } = await timeCli(c.args);
      const lib = await timeCall(c.call);
      const verdict = c.target === Infinity ? 'no target' : `${median(times) <= c.target ? 'within' : 'OVER'} the ${c.target} ms target`;
      process.stdout.write(`terrapin ${c.title}\n  CLI subprocess: ${fmt(times)} — ${verdict}\n  library call:   ${fmt(lib)}\n  output: ${last.split('\n').length} lines\n`);
    }
  } finally {
    await env.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
