// `npm run bench:scale [-- --prs N --approvals N --rate R --open-rate R]`: many PRs waiting for approval on one worker.
// Real Temporal (embedded dev server), real terraform (sandboxed), real git; GitHub is the loopback stand-in.
// The webhook server and Temporal run in this process; the worker is `app/worker.ts` (what `npm run worker`
// runs) in a process of its own, so that its memory is its own and measurable.
//   1. N PRs (default 1,000) are opened with signed pull_request.opened webhooks (2/s by default: faster than
//      one worker plans, so a backlog builds), each changing its own project (a small root: terraform_data,
//      local backend, no providers), so that no PR waits for another's project lock. Repositories hold 10
//      projects each: every PR's project detection reads all of its repository's roots, and 100 per repository
//      made that the larger part of a plan. Timed until every PR's plan comment has been posted.
//   2. The worker's RSS (/proc/<pid>/status): sampled while the PRs plan, when all of them wait, and idle after.
//   3. Signed `/approve` comments by a writer who is not the author, on a sample of the PRs (200), at 2/s:
//      latency from the webhook's 2xx (Temporal accepted the signal) to the first sign that the apply started
//      at GitHub, the `terrapin/apply` check run set to in_progress (PATCHed before the apply run starts),
//      and the median approval's history, step by step.
//   4. A second worker process joins the task queue; another sample is approved the same way, and who did
//      the work is read from the workflow histories (each task's worker identity).
// Both workers use PostgreSQL as the artifact store and data dirs of their own, as workers on two machines
// would. Figures are printed, never asserted.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import pg from 'pg';
import type { Client } from '@temporalio/client';
import { CHECK_APPLY, PR_EVENT_SIGNAL, prWorkflowId } from '../shared/contracts.ts';
import type { GithubStandin, RecordedCall } from './github-standin.ts';
import { APP_ID, startLocalStack, stopAll, type LocalStack, type Stops } from './local-stack.ts';
import { issueCommentEvent, pullRequestEvent, pullRequestJson, type DemoRepository, type PullRequestSpec } from './webhook-deliveries.ts';

const OWNER = 'acme';
const AUTHOR = 'alice';
const REVIEWER = 'bob';
const SECRET = `bench-${randomUUID()}`;
const TASK_QUEUE = 'terrapin-scale';
const PROJECTS_PER_REPO = 10;
/** No plan comment for this long while PRs still plan: something is stuck, stop rather than wait forever. */
const STALL_MS = 5 * 60_000;
const APPLY_WAIT_MS = 10 * 60_000;
const RSS_TARGET_MB = 400;
const P50_TARGET_MS = 1000;
const P99_TARGET_MS = 3000;
const WORKER_ENTRY = fileURLToPath(new URL('../app/worker.ts', import.meta.url));
const NODE_CHECK = fileURLToPath(new URL('../bin/node-check.mjs', import.meta.url));

// --- settings -------------------------------------------------------------------------------------------

interface Settings {
  prs: number;
  approvals: number;
  /** /approve comments per second. */
  rate: number;
  /** pull_request.opened deliveries per second. */
  openRate: number;
  artifactsUrl?: string;
}

function flag(argv: readonly string[], name: string, fallback: number): number {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  const value = argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} wants a positive number, got ${value}`);
  return n;
}

function settingsFromArgs(argv: readonly string[]): Settings {
  const prs = Math.floor(flag(argv, 'prs', 1000));
  const approvals = Math.floor(flag(argv, 'approvals', Math.min(200, Math.floor(prs / 2))));
  if (approvals * 2 > prs) throw new Error(`--approvals ${approvals} twice (one sample per phase) needs at least ${approvals * 2} PRs`);
  return { prs, approvals, rate: flag(argv, 'rate', 2), openRate: flag(argv, 'open-rate', 2), artifactsUrl: process.env.TERRAPIN_ARTIFACTS_URL };
}

// --- figures --------------------------------------------------------------------------------------------

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(0)} ms` : '-');
const mb = (kb: number) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(0)} MB` : '-');
const secs = (n: number) => `${(n / 1000).toFixed(1)} s`;
const load = () => loadavg()[0]!.toFixed(2);
const say = (line: string) => process.stdout.write(`${line}\n`);

/** VmRSS and VmHWM (peak RSS) of a process, in kB; NaN once it is gone. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Samples a process's RSS every 500 ms; `peak` is the highest sample since the last reset. */
class RssSampler {
  peak = 0;
  readonly pid: number;
  private readonly timer: NodeJS.Timeout;
  constructor(pid: number) {
    this.pid = pid;
    this.timer = setInterval(() => this.sample(), 500);
    this.timer.unref();
  }
  sample(): number {
    const { rss } = memoryOf(this.pid);
    if (rss > this.peak) this.peak = rss;
    return rss;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

// --- the repositories -----------------------------------------------------------------------------------

const projectTf = (value: string) => `# A small root: one terraform_data, the local backend, no providers to download.
resource "terraform_data" "app" {
  input = ${JSON.stringify(value)}
}

output "app" {
  value = terraform_data.app.output
}
`;

const dirOf = (n: number) => `p${String(n).padStart(4, '0')}`;

/**
 * Bare repositories of PROJECTS_PER_REPO projects each, written with one `git fast-import` per repository
 * (a thousand branches in seconds): main has every project; branch pr-N changes project N only.
 */
async function createRepos(tmp: string, standin: GithubStandin, prs: number): Promise<PullRequestSpec[]> {
  const out: PullRequestSpec[] = [];
  const when = `${Math.floor(Date.now() / 1000)} +0000`;
  const who = `Alice <alice@example.invalid> ${when}`;
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
  for (let first = 1, r = 1; first <= prs; first += PROJECTS_PER_REPO, r++) {
    const numbers = Array.from({ length: Math.min(PROJECTS_PER_REPO, prs - first + 1) }, (_, i) => first + i);
    const name = `scale-${r}`;
    const dir = join(tmp, 'repos', `${name}.git`);
    mkdirSync(dir, { recursive: true });
    await execa('git', ['init', '-q', '--bare', '-b', 'main', dir]);
    let stream = `blob\nmark :1\n${data(projectTf('v0'))}blob\nmark :2\n${data(projectTf('v1'))}`;
    stream += `commit refs/heads/main\nmark :3\nauthor ${who}\ncommitter ${who}\n${data(`${numbers.length} projects`)}`;
    for (const n of numbers) stream += `M 100644 :1 ${dirOf(n)}/main.tf\n`;
    for (const n of numbers) {
      stream += `commit refs/heads/pr-${n}\nauthor ${who}\ncommitter ${who}\n${data(`Change ${dirOf(n)}`)}from :3\nM 100644 :2 ${dirOf(n)}/main.tf\n`;
    }
    await execa('git', ['fast-import', '--quiet'], { cwd: dir, input: stream });
    const refs = new Map(
      (await execa('git', ['for-each-ref', '--format=%(refname:short) %(objectname)', 'refs/heads'], { cwd: dir })).stdout.split('\n').map((l) => l.split(' ') as [string, string]),
    );
    const repo: DemoRepository = { owner: OWNER, name, cloneUrl: pathToFileURL(dir).href, installationId: 77, htmlOrigin: `http://${standin.host}`, apiBaseUrl: standin.baseUrl };
    for (const n of numbers) {
      out.push({ repo, number: n, title: `Change ${dirOf(n)}`, author: AUTHOR, head: { ref: `pr-${n}`, sha: refs.get(`pr-${n}`)! }, base: { ref: 'main', sha: refs.get('main')! } });
    }
  }
  return out;
}

// --- worker processes -----------------------------------------------------------------------------------

interface WorkerProcess {
  name: string;
  /** Its /metrics (TERRAPIN_METRICS_PORT=0: any free port, read from its log). */
  metricsPort: number;
  process: ChildProcess;
  pid: number;
  /** The SDK's default worker identity, `<pid>@<host>`: how histories name the worker that ran a task. */
  identity: string;
  rss: RssSampler;
  stop(): Promise<void>;
}

/** A PostgreSQL database of the benchmark's own for the artifact store (other runs may drop tables in theirs). */
async function artifactsDatabase(given: string | undefined): Promise<string> {
  if (given) return given;
  const admin = new pg.Client({ connectionString: `postgres://${process.env.PGUSER ?? 'postgres'}@127.0.0.1:5432/postgres` });
  await admin.connect();
  try {
    const name = 'terrapin_bench_scale';
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${name}`);
    return `postgres://${process.env.PGUSER ?? 'postgres'}@127.0.0.1:5432/${name}`;
  } finally {
    await admin.end();
  }
}

/** `node app/worker.ts` as `npm run worker` starts it, pointed at the bench's Temporal; resolves once it polls. */
async function startWorker(name: string, stack: LocalStack, tmp: string, artifactsUrl: string): Promise<WorkerProcess> {
  const dataDir = join(tmp, name);
  mkdirSync(dataDir, { recursive: true });
  const log = createWriteStream(join(tmp, `${name}.log`));
  const { config } = stack;
  const child = spawn(process.execPath, ['--import', NODE_CHECK, WORKER_ENTRY], {
    cwd: dataDir, // no .env here
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      APP_ID,
      PRIVATE_KEY: config.github.privateKey,
      WEBHOOK_SECRET: config.github.webhookSecret,
      GHE_HOST: stack.standin.host,
      GHE_PROTOCOL: 'http',
      TEMPORAL_ADDRESS: stack.temporal.address,
      TEMPORAL_NAMESPACE: config.temporal.namespace,
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      TERRAPIN_DATA_DIR: dataDir,
      TERRAPIN_ARTIFACTS_URL: artifactsUrl,
      TERRAPIN_METRICS_PORT: '0',
      TERRAPIN_WEBHOOK_RECONCILE_INTERVAL: 'off',
      LOG_LEVEL: 'info',
      ...(process.env.TERRAPIN_WORKER_ENV ? (JSON.parse(process.env.TERRAPIN_WORKER_ENV) as Record<string, string>) : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (seen.length < 1e6) seen += d.toString();
      if (seen.includes('"worker running"')) resolve();
    });
    void exited.then(() => reject(new Error(`${name} exited before it was ready; its log: ${join(tmp, `${name}.log`)}`)));
  });
  const pid = child.pid!;
  const metricsPort = Number(/"port":(\d+),"paths"/.exec(seen)?.[1] ?? NaN);
  return {
    metricsPort,
    name,
    process: child,
    pid,
    identity: `${pid}@${hostname()}`,
    rss: new RssSampler(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}

/** The worker's main-thread V8 heap (used/total) and external memory, from its /metrics, in kB. */
async function heapOf(w: WorkerProcess): Promise<string> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
    const kb = (name: string) => Number(new RegExp(`^terrapin_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1024;
    return `main-thread heap ${mb(kb('nodejs_heap_size_used_bytes'))} used of ${mb(kb('nodejs_heap_size_total_bytes'))}, external ${mb(kb('nodejs_external_memory_bytes'))}`;
  } catch {
    return 'main-thread heap unknown';
  }
}

// --- GitHub-side observations ---------------------------------------------------------------------------

interface Observed {
  /** PR number → when its plan comment was posted (performance.now()). */
  planned: Map<number, number>;
  /** Head sha → when terrapin/apply was set in_progress. */
  applyStarted: Map<string, number>;
  /** Head sha → when terrapin/apply completed, and how. */
  applyDone: Map<string, string>;
  /** Bot comments that were not plans: the first few, for the report. */
  others: string[];
  rejected: RecordedCall[];
}

function observe(standin: GithubStandin): Observed {
  const seen: Observed = { planned: new Map(), applyStarted: new Map(), applyDone: new Map(), others: [], rejected: [] };
  standin.onCall((call) => {
    const at = performance.now();
    if (call.status >= 400) {
      if (seen.rejected.length < 5) seen.rejected.push(call);
      return;
    }
    if (call.route === 'POST /repos/:owner/:repo/issues/:issue_number/comments') {
      const number = Number(call.path.split('/')[5]);
      const body = String((call.body as { body?: string } | undefined)?.body ?? '');
      if (body.includes('terrapin:plan ')) {
        if (!seen.planned.has(number)) seen.planned.set(number, at);
      } else if (seen.others.length < 5 && !body.includes('terrapin:apply')) seen.others.push(`#${number}: ${body.replace(/<!--[^>]*-->/g, '').trim().slice(0, 300)}`);
      return;
    }
    if (call.route?.includes('check-runs')) {
      const res = call.response as { name?: string; head_sha?: string; status?: string; conclusion?: string } | undefined;
      if (res?.name !== CHECK_APPLY || !res.head_sha) return;
      if (res.status === 'in_progress' && !seen.applyStarted.has(res.head_sha)) seen.applyStarted.set(res.head_sha, at);
      if (res.status === 'completed') seen.applyDone.set(res.head_sha, res.conclusion ?? 'completed');
    }
  });
  return seen;
}

/** Resolves once check() is true; checked every 200 ms. Throws after `timeoutMs` without progress. */
async function until(what: string, check: () => boolean, progress: () => number, timeoutMs: number, tick?: () => void): Promise<void> {
  let last = progress();
  let lastChange = performance.now();
  let lastTick = performance.now();
  while (!check()) {
    await new Promise((r) => setTimeout(r, 200));
    const now = performance.now();
    if (progress() !== last) {
      last = progress();
      lastChange = now;
    }
    if (now - lastChange > timeoutMs) throw new Error(`no progress for ${timeoutMs / 1000}s waiting for ${what} (at ${last})`);
    if (tick && now - lastTick > 10_000) {
      lastTick = now;
      tick();
    }
  }
}

/** Open loop: item i is sent at i/rate seconds whatever the latency of the ones before. */
async function atRate<T, R>(items: readonly T[], rate: number, send: (item: T) => Promise<R>): Promise<R[]> {
  const started = performance.now();
  const inFlight: Promise<R>[] = [];
  for (let i = 0; i < items.length; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(send(items[i]!));
  }
  return Promise.all(inFlight);
}

// --- the phases -----------------------------------------------------------------------------------------

interface PlanningResult {
  elapsedMs: number;
  peakRssKb: number;
  waitingRssKb: number;
  idleRssKb: number;
  hwmKb: number;
  planned: number;
}

async function planAll(stack: LocalStack, prs: readonly PullRequestSpec[], seen: Observed, worker: WorkerProcess, s: Settings): Promise<PlanningResult> {
  for (const pr of prs) stack.standin.setPullRequest(OWNER, pr.repo.name, pr.number, pullRequestJson(pr));
  worker.rss.peak = 0;
  const t0 = performance.now();
  const sending = atRate(prs, s.openRate, async (pr) => {
    const d = await stack.deliver('pull_request', pullRequestEvent('opened', pr, AUTHOR));
    if (d.status >= 300) throw new Error(`PR #${pr.number}: webhook answered ${d.status}: ${d.body}`);
  });
  let lastCount = 0;
  let lastAt = t0;
  // A PR that never posts its plan is reported (stuck), not waited for forever; the phases go on with the others.
  const stalled = await until(
    `${prs.length} plan comments`,
    () => seen.planned.size >= prs.length,
    () => seen.planned.size,
    STALL_MS,
    () => {
      const now = performance.now();
      const rate = ((seen.planned.size - lastCount) * 1000) / (now - lastAt);
      lastCount = seen.planned.size;
      lastAt = now;
      const rss = worker.rss.sample();
      void heapOf(worker).then((heap) => say(`  ${secs(now - t0).padStart(8)}  ${String(seen.planned.size).padStart(5)}/${prs.length} planned (${rate.toFixed(1)}/s), worker RSS ${mb(rss)} (${heap}), load ${load()}`));
    },
  ).then(
    () => undefined,
    (err: Error) => err,
  );
  await sending;
  if (stalled) say(`  STUCK: ${stalled.message}; ${prs.length - seen.planned.size} PRs never posted a plan (e.g. ${prs.filter((p) => !seen.planned.has(p.number)).slice(0, 5).map((p) => `#${p.number}`).join(', ')})`);
  const elapsedMs = Math.max(...seen.planned.values()) - t0;
  const waitingRssKb = worker.rss.sample();
  const peakRssKb = worker.rss.peak;
  // Idle: the last plans' check updates and lock bookkeeping have finished, and a GC has had its chance.
  await new Promise((r) => setTimeout(r, 15_000));
  const idleRssKb = worker.rss.sample();
  say(`  idle: RSS ${mb(idleRssKb)}, ${await heapOf(worker)}`);
  return { elapsedMs, peakRssKb, waitingRssKb, idleRssKb, hwmKb: memoryOf(worker.pid).hwm, planned: seen.planned.size };
}

interface ApprovalResult {
  /** Webhook 2xx → terrapin/apply in_progress, ms, sorted. */
  fromAccepted: number[];
  /** Webhook sent → terrapin/apply in_progress, ms, sorted. */
  fromSent: number[];
  webhookMs: number[];
  applyOutcomes: Map<string, number>;
  wallMs: number;
  timeline: string;
}

async function approveSample(stack: LocalStack, sample: readonly PullRequestSpec[], seen: Observed, s: Settings): Promise<ApprovalResult> {
  const t0 = performance.now();
  const sent = await atRate(sample, s.rate, async (pr) => {
    const body = '/approve';
    const stored = stack.standin.addIssueComment(OWNER, pr.repo.name, pr.number, { body, login: REVIEWER });
    const at = performance.now();
    const d = await stack.deliver('issue_comment', issueCommentEvent(pr, { id: stored.id, nodeId: stored.node_id, body, author: REVIEWER }));
    if (d.status >= 300) throw new Error(`PR #${pr.number}: /approve webhook answered ${d.status}: ${d.body}`);
    return { pr, sentAt: at, acceptedAt: at + d.latencyMs, acceptedEpoch: Date.now(), webhookMs: d.latencyMs };
  });
  await until(`${sample.length} applies to start`, () => sample.every((pr) => seen.applyStarted.has(pr.head.sha)), () => sample.filter((pr) => seen.applyStarted.has(pr.head.sha)).length, APPLY_WAIT_MS);
  const wallMs = performance.now() - t0;
  // Untimed: the applies finish before anything else is measured, so they do not weigh on the next phase.
  await until(`${sample.length} applies to finish`, () => sample.every((pr) => seen.applyDone.has(pr.head.sha)), () => sample.filter((pr) => seen.applyDone.has(pr.head.sha)).length, APPLY_WAIT_MS);
  const applyOutcomes = new Map<string, number>();
  for (const pr of sample) {
    const o = seen.applyDone.get(pr.head.sha)!;
    applyOutcomes.set(o, (applyOutcomes.get(o) ?? 0) + 1);
  }
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  const byLatency = [...sent].sort((a, b) => seen.applyStarted.get(a.pr.head.sha)! - a.acceptedAt - (seen.applyStarted.get(b.pr.head.sha)! - b.acceptedAt));
  const median = byLatency[Math.floor(byLatency.length / 2)]!;
  const timeline = `  the median approval (#${median.pr.number}, ${ms(seen.applyStarted.get(median.pr.head.sha)! - median.acceptedAt)}), from its history (times from the webhook's 2xx):\n${await approvalTimeline(stack.temporal.client, median.pr, median.acceptedEpoch)}`;
  return {
    timeline,
    fromAccepted: sorted(sent.map((x) => seen.applyStarted.get(x.pr.head.sha)! - x.acceptedAt)),
    fromSent: sorted(sent.map((x) => seen.applyStarted.get(x.pr.head.sha)! - x.sentAt)),
    webhookMs: sorted(sent.map((x) => x.webhookMs)),
    applyOutcomes,
    wallMs,
  };
}

/** Who ran the approval's work: worker identities of the tasks after each sampled PR's last signal, and of its apply. */
async function whoDidIt(client: Client, sample: readonly PullRequestSpec[]): Promise<Map<string, { workflowTasks: number; activities: number; applies: number }>> {
  const by = new Map<string, { workflowTasks: number; activities: number; applies: number }>();
  const of = (identity: string) => by.get(identity) ?? (by.set(identity, { workflowTasks: 0, activities: 0, applies: 0 }), by.get(identity)!);
  for (const pr of sample) {
    const events = (await client.workflow.getHandle(prWorkflowId(OWNER, pr.repo.name, pr.number)).fetchHistory()).events ?? [];
    const lastSignal = events.findLastIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === PR_EVENT_SIGNAL);
    const children: string[] = [];
    for (const e of events.slice(lastSignal + 1)) {
      if (e.workflowTaskStartedEventAttributes?.identity) of(e.workflowTaskStartedEventAttributes.identity).workflowTasks++;
      if (e.activityTaskStartedEventAttributes?.identity) of(e.activityTaskStartedEventAttributes.identity).activities++;
      const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
      if (child) children.push(child);
    }
    for (const id of children) {
      const childEvents = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
      const types = new Map<string, string>();
      for (const e of childEvents) {
        if (e.activityTaskScheduledEventAttributes) types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
        if (e.workflowTaskStartedEventAttributes?.identity) of(e.workflowTaskStartedEventAttributes.identity).workflowTasks++;
        const started = e.activityTaskStartedEventAttributes;
        if (started?.identity) {
          of(started.identity).activities++;
          if (types.get(String(started.scheduledEventId)) === 'apply') of(started.identity).applies++;
        }
      }
    }
  }
  return by;
}

const epochOf = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }): number => {
  const ts = e.eventTime;
  if (!ts) return NaN;
  const sec = ts.seconds as unknown;
  const seconds = typeof sec === 'number' ? sec : typeof sec === 'object' && sec !== null && 'toNumber' in sec ? (sec as { toNumber(): number }).toNumber() : Number(sec);
  return seconds * 1000 + (ts.nanos ?? 0) / 1e6;
};

/** What the PR workflow did after its last signal (the /approve), up to the apply run it started: where the time went. */
async function approvalTimeline(client: Client, pr: PullRequestSpec, acceptedEpoch: number): Promise<string> {
  const events = (await client.workflow.getHandle(prWorkflowId(OWNER, pr.repo.name, pr.number)).fetchHistory()).events ?? [];
  const lastSignal = events.findLastIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === PR_EVENT_SIGNAL);
  const types = new Map<string, string>();
  const lines: string[] = [];
  for (const e of events.slice(lastSignal)) {
    const at = `${(epochOf(e) - acceptedEpoch).toFixed(0).padStart(6)} ms`;
    const key = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]) ?? '?';
    const a = e.activityTaskScheduledEventAttributes;
    if (a) types.set(String(e.eventId), a.activityType?.name ?? '?');
    const ref = e.activityTaskStartedEventAttributes?.scheduledEventId ?? e.activityTaskCompletedEventAttributes?.scheduledEventId;
    const name = a?.activityType?.name ?? (ref !== undefined && ref !== null ? types.get(String(ref)) : undefined);
    lines.push(`    ${at}  ${key.replace('EventAttributes', '')}${name ? ` ${name}` : ''}`);
    if (e.startChildWorkflowExecutionInitiatedEventAttributes) break;
  }
  return lines.join('\n');
}

// --- report ---------------------------------------------------------------------------------------------

const met = (ok: boolean) => (ok ? 'met' : 'NOT met');

function latencyRows(label: string, r: ApprovalResult): string {
  const l = r.fromAccepted;
  return (
    `  ${label.padEnd(30)} ${ms(percentile(l, 50)).padStart(8)} ${ms(percentile(l, 90)).padStart(8)} ${ms(percentile(l, 99)).padStart(8)} ${ms(l.at(-1) ?? NaN).padStart(8)}   n=${l.length}\n` +
    `  ${'  (from the webhook sent)'.padEnd(30)} ${ms(percentile(r.fromSent, 50)).padStart(8)} ${ms(percentile(r.fromSent, 90)).padStart(8)} ${ms(percentile(r.fromSent, 99)).padStart(8)} ${ms(r.fromSent.at(-1) ?? NaN).padStart(8)}\n` +
    `  ${'  (webhook → 2xx alone)'.padEnd(30)} ${ms(percentile(r.webhookMs, 50)).padStart(8)} ${ms(percentile(r.webhookMs, 90)).padStart(8)} ${ms(percentile(r.webhookMs, 99)).padStart(8)} ${ms(r.webhookMs.at(-1) ?? NaN).padStart(8)}\n`
  );
}

function report(s: Settings, planning: PlanningResult, one: ApprovalResult, two: ApprovalResult, twoRss: { name: string; peak: number; now: number }[], split: Map<string, { workflowTasks: number; activities: number; applies: number }>, workers: WorkerProcess[]): string {
  const p = (r: ApprovalResult, q: number) => percentile(r.fromAccepted, q);
  const worstRss = Math.max(planning.peakRssKb, planning.hwmKb);
  let out = `\nPlanning: ${s.prs} PRs opened at ${s.openRate}/s, one worker process\n`;
  out += `  ${planning.planned === s.prs ? 'all ' : ''}${planning.planned} of ${s.prs} plans posted (awaiting approval) after ${secs(planning.elapsedMs)} (${((planning.planned * 1000) / planning.elapsedMs).toFixed(2)} PRs/s)\n`;
  out += `\nWorker RSS (/proc/<pid>/status), one worker\n`;
  out += `  peak while planning (500 ms samples) ${mb(planning.peakRssKb).padStart(8)}\n`;
  out += `  peak (VmHWM, the kernel's)           ${mb(planning.hwmKb).padStart(8)}\n`;
  out += `  when all ${String(s.prs).padEnd(5)} were waiting         ${mb(planning.waitingRssKb).padStart(8)}\n`;
  out += `  15 s later, idle                     ${mb(planning.idleRssKb).padStart(8)}\n`;
  out += `\n/approve → apply started (webhook 2xx → terrapin/apply check set in_progress at GitHub), ${s.rate}/s\n`;
  out += `  ${''.padEnd(30)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)}\n`;
  out += latencyRows('one worker', one);
  out += latencyRows('two workers', two);
  out += `  applies finished: one worker ${[...one.applyOutcomes].map(([k, n]) => `${k} × ${n}`).join(', ')}; two workers ${[...two.applyOutcomes].map(([k, n]) => `${k} × ${n}`).join(', ')}\n`;
  out += `\nTwo workers: RSS and who did the approvals' work (task identities in the histories)\n`;
  out += `  ${'worker'.padEnd(30)} ${'RSS peak'.padStart(9)} ${'RSS now'.padStart(9)} ${'wf tasks'.padStart(9)} ${'activities'.padStart(11)} ${'applies'.padStart(8)}\n`;
  for (const w of workers) {
    const r = twoRss.find((x) => x.name === w.name)!;
    const d = split.get(w.identity) ?? { workflowTasks: 0, activities: 0, applies: 0 };
    out += `  ${`${w.name} (pid ${w.pid})`.padEnd(30)} ${mb(r.peak).padStart(9)} ${mb(r.now).padStart(9)} ${String(d.workflowTasks).padStart(9)} ${String(d.activities).padStart(11)} ${String(d.applies).padStart(8)}\n`;
  }
  for (const [identity, d] of split) {
    if (!workers.some((w) => w.identity === identity)) out += `  ${identity.padEnd(30)} ${''.padStart(19)} ${String(d.workflowTasks).padStart(9)} ${String(d.activities).padStart(11)} ${String(d.applies).padStart(8)}\n`;
  }
  out += `\nTargets\n`;
  out += `  worker RSS ≤ ${RSS_TARGET_MB} MB with ${s.prs} PRs waiting: ${mb(worstRss)} peak, ${mb(planning.waitingRssKb)} waiting → ${met(worstRss <= RSS_TARGET_MB * 1024)}\n`;
  for (const [label, r] of [['one worker', one], ['two workers', two]] as const) {
    out += `  ${label}: p50 ≤ 1 s: ${ms(p(r, 50))} → ${met(p(r, 50) <= P50_TARGET_MS)}; p99 ≤ 3 s: ${ms(p(r, 99))} → ${met(p(r, 99) <= P99_TARGET_MS)}\n`;
  }
  return out;
}

// --- main -----------------------------------------------------------------------------------------------

async function bench(s: Settings, tmp: string, stops: Stops, t0: number): Promise<void> {
  const artifactsUrl = await artifactsDatabase(s.artifactsUrl);
  const logLevel = (['fatal', 'error', 'warn', 'info', 'debug'] as const).find((l) => l === process.env.LOG_LEVEL) ?? 'silent';
  const stack = await startLocalStack({ tmp, webhookSecret: SECRET, taskQueue: TASK_QUEUE, worker: false, logLevel, syncLogs: false }, stops);
  stack.standin.setPermission(AUTHOR, 'write');
  stack.standin.setPermission(REVIEWER, 'write');
  const seen = observe(stack.standin);
  const prs = await createRepos(tmp, stack.standin, s.prs);
  const workers: WorkerProcess[] = [];
  stops.push(async () => {
    for (const w of workers) w.rss.stop();
    await Promise.all(workers.map((w) => w.stop()));
  });
  workers.push(await startWorker('worker-1', stack, tmp, artifactsUrl));
  const [w1] = workers as [WorkerProcess];
  say(
    `Scale benchmark: ${s.prs} PRs (${prs.at(-1)!.repo.name.replace('scale-', '')} repositories of up to ${PROJECTS_PER_REPO} projects; terraform_data, local backend, no providers)\n` +
      `  webhook server ${stack.webhookUrl} → embedded Temporal ${stack.temporal.address} → worker process (app/worker.ts, pid ${w1.pid}, task queue ${TASK_QUEUE})\n` +
      `  GitHub: loopback stand-in ${stack.standin.baseUrl}; artifact store ${artifactsUrl.replace(/\/\/[^@/]*@/, '//')}\n` +
      `  machine: ${cpus().length} CPUs, load average ${load()} at start; set up in ${secs(performance.now() - t0)}; worker RSS at start ${mb(w1.rss.sample())}\n` +
      `\nPlanning ${s.prs} PRs`,
  );
  const planning = await planAll(stack, prs, seen, w1, s);
  say(`  done in ${secs(planning.elapsedMs)}; worker RSS ${mb(planning.waitingRssKb)} when all waited (peak ${mb(planning.peakRssKb)})`);
  if (seen.rejected.length > 0) say(`  GitHub rejected ${seen.rejected.length}+ calls, e.g. ${seen.rejected.map((c) => `${c.method} ${c.path} → ${c.status}`).join('; ')}`);

  const waiting = prs.filter((p) => seen.planned.has(p.number));
  say(`\nPhase 1: /approve on ${s.approvals} PRs at ${s.rate}/s, one worker`);
  const one = await approveSample(stack, waiting.slice(0, s.approvals), seen, s);
  say(`  p50 ${ms(percentile(one.fromAccepted, 50))}, p99 ${ms(percentile(one.fromAccepted, 99))}; load ${load()}\n${one.timeline}`);

  workers.push(await startWorker('worker-2', stack, tmp, artifactsUrl));
  const [, w2] = workers as [WorkerProcess, WorkerProcess];
  say(`\nPhase 2: a second worker (pid ${w2.pid}) on the same task queue; /approve on ${s.approvals} other PRs at ${s.rate}/s`);
  for (const w of workers) w.rss.peak = 0;
  const sample2 = waiting.slice(s.approvals, 2 * s.approvals);
  const two = await approveSample(stack, sample2, seen, s);
  const twoRss = workers.map((w) => ({ name: w.name, peak: w.rss.peak, now: w.rss.sample() }));
  say(`  p50 ${ms(percentile(two.fromAccepted, 50))}, p99 ${ms(percentile(two.fromAccepted, 99))}; load ${load()}\n${two.timeline}`);
  const split = await whoDidIt(stack.temporal.client, sample2);
  if (seen.others.length > 0) say(`\nOther bot comments (first ${seen.others.length}):\n${seen.others.map((o) => `  ${o}`).join('\n')}`);
  say(report(s, planning, one, two, twoRss, split, workers) + `\nTotal benchmark time ${secs(performance.now() - t0)}; load average ${load()} at the end (${cpus().length} CPUs)`);
}

async function main(): Promise<void> {
  const s = settingsFromArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), 'terrapin-scale-'));
  const stops: Stops = [];
  let exitCode = 0;
  const t0 = performance.now();
  try {
    await bench(s, tmp, stops, t0);
  } catch (err) {
    exitCode = 1;
    process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n  files kept in ${tmp} (worker logs: worker-*.log)\n`);
  } finally {
    await stopAll(stops);
    if (exitCode === 0) rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

if (import.meta.main) await main();
