// `npm run bench:overhead [-- --runs N]`: how much of webhook → plan comment is Terrapin's own overhead.
// One run, side by side on the same one-project repository:
//   - Terrapin from outside, as demo.ts starts it (embedded Temporal, worker, webhook server in this
//     process, the loopback GitHub stand-in): a signed pull_request.opened, timed until the stand-in
//     receives the plan comment;
//   - the bare steps a person would run: git clone, terraform init, plan -out, show -json (unsandboxed);
//   - where Terrapin's time goes, from each measured PR workflow's history: per activity type, queue
//     latency (scheduled → started) and run time (started → completed), workflow-task time, and the
//     critical path of the median PR;
//   - what one sandboxed command costs against the same command unsandboxed.
// Figures are printed, not asserted. One warm-up PR first (JIT, workflow bundle, first sandbox), not counted.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import { DEFAULT_OPERATOR_POLICY } from '../activities/operator-policy.ts';
import { runCommand } from '../activities/process.ts';
import { resolveSandbox, wrapCommand, type Sandbox } from '../activities/sandbox.ts';
import { plan } from '../activities/terraform.ts';
import { CHECK_PLAN, prWorkflowId } from '../shared/contracts.ts';
import type { GithubStandin, RecordedCall } from './github-standin.ts';
import { startLocalStack, stopAll, type LocalStack, type Stops } from './local-stack.ts';
import { pullRequestEvent, pullRequestJson, type DemoRepository, type PullRequestSpec } from './webhook-deliveries.ts';

const OWNER = 'acme';
const REPO = 'overhead';
const AUTHOR = 'alice';
const SECRET = `bench-${randomUUID()}`;
const STEP_TIMEOUT_MS = 60_000;
const SANDBOX_SAMPLES = 10;
const GIT_ENV = { GIT_AUTHOR_NAME: 'Alice', GIT_AUTHOR_EMAIL: 'alice@example.invalid', GIT_COMMITTER_NAME: 'Alice', GIT_COMMITTER_EMAIL: 'alice@example.invalid' };

function runsFromArgs(argv: readonly string[]): number {
  const i = argv.findIndex((a) => a === '--runs' || a.startsWith('--runs='));
  if (i < 0) return 10;
  const value = argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--runs wants a positive integer, got ${value}`);
  return n;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const stats = (xs: readonly number[]) => ({ min: Math.min(...xs), median: median(xs), max: Math.max(...xs), n: xs.length });
const fmt = (n: number) => (Number.isFinite(n) ? `${n.toFixed(0)} ms` : '-');
const row = (name: string, xs: readonly number[], width = 34) => {
  const s = stats(xs);
  return `  ${name.padEnd(width)} ${fmt(s.min).padStart(9)} ${fmt(s.median).padStart(9)} ${fmt(s.max).padStart(9)}${s.n > 1 ? '' : '   (once)'}\n`;
};
const header = (title: string, width = 34) => `\n${title}\n  ${''.padEnd(width)} ${'min'.padStart(9)} ${'median'.padStart(9)} ${'max'.padStart(9)}\n`;

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: GIT_ENV })).stdout.trim();
}

/** One project at the root: a terraform_data and an output, state in a local backend outside the repo. */
function mainTf(stateFile: string, value: string): string {
  return `terraform {
  backend "local" {
    path = ${JSON.stringify(stateFile)}
  }
}

resource "terraform_data" "app" {
  input = ${JSON.stringify(value)}
}

output "app" {
  value = terraform_data.app.output
}
`;
}

/** Resolves with the first call `match` accepts, with the time it was seen. */
function nextCall(standin: GithubStandin, what: string, match: (call: RecordedCall) => boolean): Promise<{ call: RecordedCall; at: number; epoch: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${STEP_TIMEOUT_MS / 1000}s waiting for ${what}`));
    }, STEP_TIMEOUT_MS);
    const off = standin.onCall((call) => {
      if (!match(call)) return;
      clearTimeout(timer);
      off();
      resolve({ call, at: performance.now(), epoch: Date.now() });
    });
  });
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${STEP_TIMEOUT_MS / 1000}s waiting for ${what}`)), STEP_TIMEOUT_MS)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface Sample {
  number: number;
  sha: string;
  sentEpoch: number;
  commentEpoch: number;
  webhookToComment: number;
  /** GitHub calls from the webhook up to and including the plan comment. */
  githubCalls: RecordedCall[];
}

/**
 * Sends pull_request.opened and waits for the plan comment; then, untimed, for the plan check to complete
 * and for the PR's close to end its workflow (a PR holds the project's lock until it is closed).
 */
async function measurePr(ctx: Ctx, pr: PullRequestSpec): Promise<Sample> {
  const { standin } = ctx;
  const firstCall = standin.calls.length;
  const commentPath = `/repos/${OWNER}/${REPO}/issues/${pr.number}/comments`;
  const comment = nextCall(standin, `the plan comment on #${pr.number}`, (c) => c.method === 'POST' && c.path === commentPath);
  const checkDone = nextCall(standin, `check ${CHECK_PLAN} on #${pr.number} to complete`, (c) => {
    const res = c.response as { name?: string; head_sha?: string; status?: string } | undefined;
    return c.route?.includes('check-runs') === true && res !== undefined && res.name === CHECK_PLAN && res.head_sha === pr.head.sha && res.status === 'completed';
  });
  standin.setPullRequest(OWNER, REPO, pr.number, pullRequestJson(pr));
  const sentEpoch = Date.now();
  const sent = performance.now();
  const delivery = await ctx.deliver('pull_request', pullRequestEvent('opened', pr, AUTHOR));
  if (delivery.status >= 300) throw new Error(`webhook answered ${delivery.status}: ${delivery.body}`);
  const got = await comment;
  const body = String((got.call.body as { body?: string } | undefined)?.body ?? '');
  if (got.call.status >= 300 || !body.includes(`terrapin:plan ${pr.head.sha}`)) {
    throw new Error(`PR #${pr.number}: expected a plan comment, got ${got.call.status}:\n${body.slice(0, 2000)}`);
  }
  await checkDone;
  const closed: PullRequestSpec = { ...pr, state: 'closed' };
  standin.setPullRequest(OWNER, REPO, pr.number, pullRequestJson(closed));
  const done = await ctx.deliver('pull_request', pullRequestEvent('closed', closed, AUTHOR));
  if (done.status >= 300) throw new Error(`webhook answered ${done.status}: ${done.body}`);
  await withTimeout(ctx.client.workflow.getHandle(prWorkflowId(OWNER, REPO, pr.number)).result(), `PR #${pr.number}'s workflow to end`);
  const upToComment = standin.calls.slice(firstCall, standin.calls.indexOf(got.call) + 1);
  return { number: pr.number, sha: pr.head.sha, sentEpoch, commentEpoch: got.epoch, webhookToComment: got.at - sent, githubCalls: upToComment };
}

const BARE_STEPS = ['git clone', 'terraform init', 'terraform plan -out', 'terraform show -json'] as const;
type BareStep = (typeof BARE_STEPS)[number];

/** The bare steps on a fresh clone of the PR's branch, plain execa, each timed. */
async function bareRun(cloneUrl: string, branch: string, dir: string): Promise<Record<BareStep | 'total', number>> {
  const out = {} as Record<BareStep | 'total', number>;
  const env = { TF_IN_AUTOMATION: '1', TF_INPUT: '0' };
  const start = performance.now();
  const step = async (name: BareStep, file: string, args: string[], cwd: string) => {
    const t = performance.now();
    await execa(file, args, { cwd, env, stdin: 'ignore' });
    out[name] = performance.now() - t;
  };
  await step('git clone', 'git', ['clone', '-q', '--branch', branch, cloneUrl, dir], join(dir, '..'));
  await step('terraform init', 'terraform', ['init', '-input=false', '-no-color'], dir);
  await step('terraform plan -out', 'terraform', ['plan', '-input=false', '-no-color', '-out=plan.tfplan'], dir);
  await step('terraform show -json', 'terraform', ['show', '-json', '-no-color', 'plan.tfplan'], dir);
  out.total = performance.now() - start;
  return out;
}

// --- workflow history -------------------------------------------------------------------------------

type HistoryEvent = NonNullable<Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>['events']>[number];

const epochOf = (e: HistoryEvent): number => {
  const ts = e.eventTime;
  if (!ts) return NaN;
  const s = ts.seconds as unknown;
  const seconds = typeof s === 'number' ? s : typeof s === 'object' && s !== null && 'toNumber' in s ? (s as { toNumber(): number }).toNumber() : Number(s);
  return seconds * 1000 + (ts.nanos ?? 0) / 1e6;
};
const idOf = (id: unknown) => String(id);

interface ActivitySpan {
  /** The workflow type that ran it (the PR workflow, or a child such as projectRun). */
  workflow: string;
  type: string;
  scheduled: number;
  started?: number;
  closed?: number;
}
interface WorkflowTaskSpan {
  workflow: string;
  scheduled: number;
  started?: number;
  completed?: number;
}
interface Breakdown {
  activities: ActivitySpan[];
  workflowTasks: WorkflowTaskSpan[];
  /** The PR workflow first heard of the webhook (start or signal). */
  firstEvent: number;
}

interface WorkflowHistory {
  workflow: string;
  events: readonly HistoryEvent[];
}

/** The PR workflow's history and those of the child workflows it started before `until`, and theirs. */
async function histories(client: Client, workflowId: string, until: number): Promise<WorkflowHistory[]> {
  const out: WorkflowHistory[] = [];
  const pending: { id: string; type: string }[] = [{ id: workflowId, type: 'pr' }];
  while (pending.length > 0 && out.length < 50) {
    const next = pending.shift()!;
    const events = (await client.workflow.getHandle(next.id).fetchHistory()).events ?? [];
    out.push({ workflow: next.type, events });
    for (const e of events) {
      const child = e.startChildWorkflowExecutionInitiatedEventAttributes;
      if (child?.workflowId && epochOf(e) <= until) pending.push({ id: child.workflowId, type: child.workflowType?.name ?? 'child' });
    }
  }
  return out;
}

/** Activities and workflow tasks scheduled before the plan comment arrived, in every workflow: what led to it. */
function breakdown(workflows: readonly WorkflowHistory[], until: number): Breakdown {
  const activities: ActivitySpan[] = [];
  const workflowTasks: WorkflowTaskSpan[] = [];
  let firstEvent = NaN;
  for (const { workflow, events } of workflows) {
    const acts = new Map<string, ActivitySpan>();
    const wfts = new Map<string, WorkflowTaskSpan>();
    for (const e of events) {
      const at = epochOf(e);
      if (workflow === 'pr' && Number.isNaN(firstEvent) && (e.workflowExecutionStartedEventAttributes || e.workflowExecutionSignaledEventAttributes)) firstEvent = at;
      if (e.activityTaskScheduledEventAttributes && at <= until) {
        acts.set(idOf(e.eventId), { workflow, type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', scheduled: at });
      }
      const started = e.activityTaskStartedEventAttributes;
      if (started) {
        const span = acts.get(idOf(started.scheduledEventId));
        if (span) span.started = at;
      }
      const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
      if (closed) {
        const span = acts.get(idOf(closed.scheduledEventId));
        if (span) span.closed = at;
      }
      if (e.workflowTaskScheduledEventAttributes && at <= until) wfts.set(idOf(e.eventId), { workflow, scheduled: at });
      if (e.workflowTaskStartedEventAttributes) {
        const t = wfts.get(idOf(e.workflowTaskStartedEventAttributes.scheduledEventId));
        if (t) t.started = at;
      }
      const done = e.workflowTaskCompletedEventAttributes ?? e.workflowTaskFailedEventAttributes ?? e.workflowTaskTimedOutEventAttributes;
      if (done) {
        const t = wfts.get(idOf(done.scheduledEventId));
        if (t) t.completed = at;
      }
    }
    activities.push(...acts.values());
    workflowTasks.push(...wfts.values());
  }
  return { activities, workflowTasks, firstEvent };
}

// --- sandbox cost ---------------------------------------------------------------------------------

async function sandboxCost(dir: string): Promise<{ plain: number[]; bwrap: number[]; privateNet: number[] } | string> {
  const sandbox = await resolveSandbox(DEFAULT_OPERATOR_POLICY.runner);
  if (sandbox.kind !== 'bubblewrap') return `no sandbox here (${sandbox.kind}${sandbox.kind === 'unavailable' ? `: ${sandbox.reason}` : ''})`;
  const checkout = join(dir, 'checkout');
  const run = { checkout, runDir: join(dir, 'run'), pluginCache: join(dir, 'cache') };
  for (const d of [checkout, run.runDir, run.pluginCache]) mkdirSync(d, { recursive: true });
  const time = async (wrap?: Parameters<typeof runCommand>[2]['wrap']) => {
    const t = performance.now();
    const r = await runCommand('true', [], { cwd: checkout, wrap });
    if (r.exitCode !== 0) throw new Error(`sandboxed true failed (${r.exitCode}): ${r.output}`);
    return performance.now() - t;
  };
  const plain: number[] = [];
  const bwrap: number[] = [];
  const privateNet: number[] = [];
  const host = { ...sandbox, network: 'host' as const };
  const priv = { ...sandbox, network: 'private' as const };
  await time((c) => wrapCommand(priv, run, c)); // warm-up
  for (let i = 0; i < SANDBOX_SAMPLES; i++) {
    plain.push(await time());
    bwrap.push(await time((c) => wrapCommand(host, run, c)));
    privateNet.push(await time((c) => wrapCommand(priv, run, c)));
  }
  return { plain, bwrap, privateNet };
}

/**
 * The plan activity's function alone, on fresh clones: sandboxed as the worker runs it, and with
 * `runner.sandbox: none`. The difference is what the sandbox costs a whole plan.
 */
async function directPlans(cloneUrl: string, prs: readonly PullRequestSpec[], dir: string): Promise<{ sandboxed: number[]; unsandboxed: number[] } | string> {
  const sandbox = await resolveSandbox(DEFAULT_OPERATOR_POLICY.runner);
  if (sandbox.kind !== 'bubblewrap') return `no sandbox here (${sandbox.kind})`;
  const dataDir = join(dir, 'data');
  const once = async (pr: PullRequestSpec, kind: string, with_: Sandbox) => {
    const workDir = join(dataDir, 'work', OWNER, REPO, `${kind}-${pr.number}`, pr.head.sha);
    mkdirSync(join(workDir, '..'), { recursive: true });
    await execa('git', ['clone', '-q', '--branch', pr.head.ref, cloneUrl, workDir]);
    const t = performance.now();
    const r = await plan({ workDir, projectDir: '.', workspace: 'default', binary: 'terraform' }, { dataDir, sandbox: with_ });
    if (!r.ok) throw new Error(`direct plan failed at ${r.step}`);
    return performance.now() - t;
  };
  const sandboxed: number[] = [];
  const unsandboxed: number[] = [];
  for (const pr of prs) {
    sandboxed.push(await once(pr, 'sandboxed', sandbox));
    unsandboxed.push(await once(pr, 'unsandboxed', { kind: 'none' }));
  }
  return { sandboxed, unsandboxed };
}

// --- main -----------------------------------------------------------------------------------------

type BareTimes = Record<BareStep | 'total', number>;
type Ctx = { standin: GithubStandin; deliver: LocalStack['deliver']; repo: DemoRepository; client: Client };
type SandboxCost = Awaited<ReturnType<typeof sandboxCost>>;
type DirectPlans = Awaited<ReturnType<typeof directPlans>>;

/** The one-project repository on main, and one PR branch per run plus the warm-up (PR 1), each changing the resource. */
async function createRepo(tmp: string, standin: GithubStandin, runs: number): Promise<{ repo: DemoRepository; prs: PullRequestSpec[] }> {
  const repoDir = join(tmp, 'repo');
  const stateFile = join(tmp, 'state', 'terraform.tfstate');
  mkdirSync(repoDir, { recursive: true });
  writeFileSync(join(repoDir, 'main.tf'), mainTf(stateFile, 'v0'));
  await git(repoDir, 'init', '-q', '-b', 'main');
  await git(repoDir, 'config', 'commit.gpgsign', 'false');
  await git(repoDir, 'add', '-A');
  await git(repoDir, 'commit', '-q', '-m', 'One project');
  const baseSha = await git(repoDir, 'rev-parse', 'HEAD');
  const repo: DemoRepository = { owner: OWNER, name: REPO, cloneUrl: pathToFileURL(repoDir).href, installationId: 77, htmlOrigin: `http://${standin.host}`, apiBaseUrl: standin.baseUrl };
  const prs: PullRequestSpec[] = [];
  for (let n = 1; n <= runs + 1; n++) {
    const branch = `change-${n}`;
    await git(repoDir, 'checkout', '-q', '-b', branch, 'main');
    writeFileSync(join(repoDir, 'main.tf'), mainTf(stateFile, `v${n}`));
    await git(repoDir, 'commit', '-q', '-am', `Change ${n}`);
    prs.push({ repo, number: n, title: `Change ${n}`, author: AUTHOR, head: { ref: branch, sha: await git(repoDir, 'rev-parse', 'HEAD') }, base: { ref: 'main', sha: baseSha } });
    await git(repoDir, 'checkout', '-q', 'main');
  }
  return { repo, prs };
}

/** The warm-up PR, then each PR through Terrapin and by hand, alternating so load drift falls on both alike. */
async function measureAll(ctx: Ctx, prs: readonly PullRequestSpec[], tmp: string): Promise<{ samples: Sample[]; bare: BareTimes[] }> {
  await measurePr(ctx, prs[0]!);
  const samples: Sample[] = [];
  const bare: BareTimes[] = [];
  for (const pr of prs.slice(1)) {
    samples.push(await measurePr(ctx, pr));
    const dir = join(tmp, 'bare', String(pr.number));
    mkdirSync(join(dir, '..'), { recursive: true });
    bare.push(await bareRun(ctx.repo.cloneUrl, pr.head.ref, dir));
  }
  return { samples, bare };
}

const spanLabel = (a: ActivitySpan) => (a.workflow === 'pr' ? a.type : `${a.type} [${a.workflow}]`);

function wallTimeSection(samples: readonly Sample[], bare: readonly BareTimes[]): string {
  const w2c = samples.map((s) => s.webhookToComment);
  const bareTotal = bare.map((b) => b.total);
  let out = header('Wall time');
  out += row('webhook → plan comment (Terrapin)', w2c);
  out += row('bare total', bareTotal);
  for (const step of BARE_STEPS) out += row(`  ${step}`, bare.map((b) => b[step]));
  out += `  ${'Terrapin overhead'.padEnd(34)} ${fmt(median(w2c) - median(bareTotal)).padStart(19)}   = median(webhook → comment) − median(bare total)\n`;
  return out;
}

function timeSplitSection(samples: readonly Sample[], splits: readonly Breakdown[]): string {
  let out = header('Where Terrapin\'s time goes (median per PR, from workflow histories; activities scheduled before the comment)');
  out += row('webhook → workflow hears of it', samples.map((s, i) => splits[i]!.firstEvent - s.sentEpoch));
  const types = [...new Set(splits.flatMap((h) => h.activities.map(spanLabel)))];
  for (const type of types) {
    const spans = splits.flatMap((h) => h.activities.filter((a) => spanLabel(a) === type));
    const perPr = spans.length / splits.length;
    out += row(`${type}${perPr !== 1 ? ` (×${perPr.toFixed(perPr % 1 ? 1 : 0)}/PR)` : ''} queue`, spans.filter((a) => a.started).map((a) => a.started! - a.scheduled));
    out += row(`${type} run`, spans.filter((a) => a.closed && a.started).map((a) => a.closed! - a.started!));
  }
  out += row('workflow tasks, all workflows', splits.map((h) => h.workflowTasks.reduce((sum, t) => sum + ((t.completed ?? t.scheduled) - t.scheduled), 0)));
  out += row('workflow tasks, count per PR', splits.map((h) => h.workflowTasks.length)).replaceAll(' ms', '   ');
  out += row('activities run, total per PR', splits.map((h) => h.activities.reduce((sum, a) => sum + ((a.closed ?? a.scheduled) - (a.started ?? a.scheduled)), 0)));
  out += row('activity queue, total per PR', splits.map((h) => h.activities.reduce((sum, a) => sum + ((a.started ?? a.scheduled) - a.scheduled), 0)));
  return out;
}

function githubCallsSection(samples: readonly Sample[]): string {
  const calls = new Map<string, number>();
  for (const s of samples) for (const c of s.githubCalls) calls.set(c.route ?? `${c.method} ${c.path}`, (calls.get(c.route ?? `${c.method} ${c.path}`) ?? 0) + 1);
  let out = `\nGitHub calls from the webhook to the plan comment (per PR)\n`;
  for (const [route, n] of calls) out += `  ${(n / samples.length).toFixed(1).padStart(5)} × ${route}\n`;
  return out;
}

/** The critical path of the median PR: what happened, when, after the webhook left. */
function timelineSection(samples: readonly Sample[], splits: readonly Breakdown[]): string {
  const order = samples.map((s, i) => [s.webhookToComment, i] as const).sort((a, b) => a[0] - b[0]);
  const mid = order[Math.floor(order.length / 2)]![1];
  const h = splits[mid]!;
  const s = samples[mid]!;
  const at = (t: number | undefined) => (t === undefined ? '    ?' : `${(t - s.sentEpoch).toFixed(0).padStart(5)}`);
  const lines: [number, string][] = [[h.firstEvent, `${at(h.firstEvent)} ms  workflow heard of the webhook`]];
  for (const t of h.workflowTasks) lines.push([t.scheduled, `${at(t.scheduled)} ms  ${t.workflow === 'pr' ? '' : `[${t.workflow}] `}workflow task: queue ${fmt((t.started ?? t.scheduled) - t.scheduled)}, run ${fmt((t.completed ?? t.scheduled) - (t.started ?? t.scheduled))}`]);
  for (const a of h.activities) {
    lines.push([a.scheduled, `${at(a.scheduled)} ms  ${spanLabel(a)}: queue ${fmt((a.started ?? a.scheduled) - a.scheduled)}, run ${fmt((a.closed ?? a.scheduled) - (a.started ?? a.scheduled))} → done at ${at(a.closed).trim()} ms`]);
  }
  lines.push([s.commentEpoch, `${at(s.commentEpoch)} ms  plan comment received`]);
  return `\nTimeline of the median PR (#${s.number}, ${fmt(s.webhookToComment)})\n` + lines.sort((a, b) => a[0] - b[0]).map(([, l]) => `  ${l}\n`).join('');
}

function sandboxSections(sandbox: SandboxCost, direct: DirectPlans): string {
  let out = header('One no-op command (`true`) through runCommand');
  if (typeof sandbox === 'string') out += `  ${sandbox}\n`;
  else {
    out += row('unsandboxed', sandbox.plain);
    out += row('bubblewrap, host network', sandbox.bwrap);
    out += row('bubblewrap, private network', sandbox.privateNet);
  }
  out += header('The plan activity\'s function alone, on a fresh clone (init, plan, show -json, show)');
  if (typeof direct === 'string') out += `  ${direct}\n`;
  else {
    out += row('sandboxed', direct.sandboxed);
    out += row('unsandboxed (runner.sandbox: none)', direct.unsandboxed);
  }
  return out;
}

/** Starts Terrapin, measures, and prints every table. */
async function bench(runs: number, tmp: string, stops: Stops, t0: number): Promise<void> {
  const env = { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
  const { standin, temporal, webhookUrl: url, deliver } = await startLocalStack({ tmp, webhookSecret: SECRET, taskQueue: 'terrapin-overhead', env }, stops);
  standin.setPermission(AUTHOR, 'write');
  const { repo, prs } = await createRepo(tmp, standin, runs);
  process.stdout.write(
    `Overhead benchmark: ${runs} PRs (+1 warm-up) on a one-project repository (terraform_data, local backend)\n` +
      `  Terrapin: webhook ${url} → embedded Temporal ${temporal.address} → worker → GitHub stand-in ${standin.baseUrl}\n` +
      `  machine: ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(2)} at start; started in ${fmt(performance.now() - t0)}\n`,
  );
  const { samples, bare } = await measureAll({ standin, deliver, repo, client: temporal.client }, prs, tmp);
  const splits = await Promise.all(samples.map(async (s) => breakdown(await histories(temporal.client, prWorkflowId(OWNER, REPO, s.number), s.commentEpoch), s.commentEpoch)));
  const sandbox = await sandboxCost(join(tmp, 'sandbox'));
  const direct = await directPlans(repo.cloneUrl, prs.slice(1), join(tmp, 'direct'));
  process.stdout.write(
    wallTimeSection(samples, bare) +
      timeSplitSection(samples, splits) +
      githubCallsSection(samples) +
      timelineSection(samples, splits) +
      sandboxSections(sandbox, direct) +
      // Other work on the machine inflates every figure: say how busy it was.
      `\nTotal benchmark time ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${loadavg()[0]!.toFixed(2)} at the end (${cpus().length} CPUs)\n`,
  );
}

async function main(): Promise<void> {
  const runs = runsFromArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), 'terrapin-overhead-'));
  const stops: Stops = [];
  let exitCode = 0;
  const t0 = performance.now();
  try {
    await bench(runs, tmp, stops, t0);
  } catch (err) {
    exitCode = 1;
    process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n  files kept in ${tmp}\n`);
  } finally {
    await stopAll(stops);
    if (exitCode === 0) rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

if (import.meta.main) await main();
