// `npm run bench:webhooks`: how fast the real webhook server turns signed deliveries into durable signals.
// Embedded Temporal, the webhook server, no worker: Temporal accepts and persists a signal (starting the
// workflow if needed) whether or not a worker is polling, and that acceptance is what the webhook's 2xx
// promises. Open loop: deliveries leave at a fixed rate whatever the latency, over keep-alive connections.
// Settings: BENCH_RATE (deliveries/s, 100), BENCH_SECONDS (20), BENCH_PRS (50). Figures are printed, not asserted.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@temporalio/client';
import { PR_EVENT_SIGNAL, prWorkflowId } from '../shared/contracts.ts';
import { startLocalStack, stopAll, type LocalStack, type Stops } from './local-stack.ts';
import { issueCommentEvent, type Delivery, type DemoRepository, type PullRequestSpec } from './webhook-deliveries.ts';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const PRS = Number(process.env.BENCH_PRS ?? 50);
const SAMPLE = 5;
const SECRET = 'bench-secret';

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
const ms = (n: number) => `${n.toFixed(1)} ms`;

type Result = Delivery | Error;

/** Embedded Temporal and the webhook server, no worker; logs silent unless LOG_LEVEL asks for them. */
async function startStack(tmp: string, stops: Stops): Promise<LocalStack> {
  // Silent by default: under overload every failed delivery logs its whole payload, drowning the figures.
  const logLevel = (['fatal', 'error', 'warn', 'info', 'debug'] as const).find((l) => l === process.env.LOG_LEVEL) ?? 'silent';
  return startLocalStack({ tmp, webhookSecret: SECRET, taskQueue: 'terrapin-bench', worker: false, logLevel, syncLogs: false }, stops);
}

function benchPrs(stack: LocalStack, tmp: string): PullRequestSpec[] {
  const repo: DemoRepository = {
    owner: 'acme',
    name: 'bench',
    cloneUrl: pathToFileURL(join(tmp, 'repo')).href,
    installationId: 77,
    htmlOrigin: `http://${stack.standin.host}`,
    apiBaseUrl: stack.standin.baseUrl,
  };
  return Array.from({ length: PRS }, (_, i) => ({
    repo,
    number: i + 1,
    title: `Bench PR ${i + 1}`,
    author: 'alice',
    head: { ref: `bench-${i + 1}`, sha: (i + 1).toString(16).padStart(40, 'a') },
    base: { ref: 'main', sha: 'b'.repeat(40) },
  }));
}

/** Open loop: delivery i leaves at i/RATE seconds whatever the latency of the ones before it. */
async function fire(stack: LocalStack, payloads: unknown[]): Promise<{ results: Result[]; wallSeconds: number }> {
  const started = performance.now();
  const inFlight: Promise<Result>[] = [];
  for (let i = 0; i < payloads.length; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(stack.deliver('issue_comment', payloads[i]).catch((err: Error) => err));
  }
  const results = await Promise.all(inFlight);
  return { results, wallSeconds: (performance.now() - started) / 1000 };
}

/** Prints responses, throughput and latency; returns how many deliveries were accepted. */
function printResults(results: Result[], wallSeconds: number): number {
  const deliveries = results.filter((r): r is Delivery => !(r instanceof Error));
  const ok = deliveries.filter((d) => d.status >= 200 && d.status < 300);
  const byStatus = new Map<string, number>();
  for (const r of results) {
    const key = r instanceof Error ? `error ${r.message}` : String(r.status);
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
  }
  const latencies = ok.map((d) => d.latencyMs).sort((a, b) => a - b);
  process.stdout.write(
    `\nResults\n` +
      `  responses: ${[...byStatus].map(([k, n]) => `${k} × ${n}`).join(', ')}\n` +
      `  achieved:  ${(ok.length / wallSeconds).toFixed(1)} deliveries/s accepted (${results.length} sent in ${wallSeconds.toFixed(1)}s)\n` +
      `  latency webhook → 2xx: p50 ${ms(percentile(latencies, 50))}, p90 ${ms(percentile(latencies, 90))}, ` +
      `p99 ${ms(percentile(latencies, 99))}, max ${ms(latencies.at(-1) ?? NaN)}\n`,
  );
  return ok.length;
}

/** Every accepted delivery must be a signal in its workflow's history; returns whether all sampled ones are. */
async function verifySignals(client: Client, prs: PullRequestSpec[], results: Result[]): Promise<boolean> {
  process.stdout.write(`\nVerifying the signals of ${SAMPLE} sampled workflows\n`);
  let allGood = true;
  for (const pr of prs.slice(0, SAMPLE)) {
    const id = prWorkflowId(pr.repo.owner, pr.repo.name, pr.number);
    const accepted = results.filter((r, i) => i % PRS === pr.number - 1 && !(r instanceof Error) && r.status < 300).length;
    const expected = accepted + (pr.number === 1 ? 1 : 0); // PR 1 also got the warm-up delivery
    const history = await client.workflow.getHandle(id).fetchHistory();
    const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === PR_EVENT_SIGNAL).length;
    // A delivery that timed out at the webhook (5xx) may still have landed: more signals than 2xx is fine.
    const good = signals >= expected;
    if (!good) allGood = false;
    const late = signals > expected ? ` (+${signals - expected} from deliveries that timed out at the webhook but reached Temporal)` : '';
    process.stdout.write(`  ${good ? '✓' : '✗'} ${id}: ${signals} signals in history, ${expected} deliveries accepted${late}\n`);
  }
  return allGood;
}

async function terminateAll(client: Client, prs: PullRequestSpec[]): Promise<void> {
  const terminated = await Promise.allSettled(prs.map((pr) => client.workflow.getHandle(prWorkflowId(pr.repo.owner, pr.repo.name, pr.number)).terminate('benchmark done')));
  process.stdout.write(`\nTerminated ${terminated.filter((t) => t.status === 'fulfilled').length} benchmark workflows.\n`);
}

/** Runs the benchmark; true when every delivery was accepted and every sampled signal is in its history. */
async function bench(tmp: string, stops: Stops): Promise<boolean> {
  const stack = await startStack(tmp, stops);
  const prs = benchPrs(stack, tmp);
  const total = Math.round(RATE * SECONDS);
  // Payloads are built up front so the measured loop only signs and sends.
  const payloads = Array.from({ length: total }, (_, i) =>
    issueCommentEvent(prs[i % PRS]!, { id: 5_000_000 + i, nodeId: `IC_bench${i}`, body: '/help', author: 'bob' }),
  );
  process.stdout.write(
    `Webhook benchmark: ${total} signed issue_comment "/help" deliveries on ${PRS} PRs at ${RATE}/s for ${SECONDS}s\n` +
      `  webhook server ${stack.webhookUrl} → embedded Temporal ${stack.temporal.address}\n` +
      `  no worker runs: Temporal durably accepts signals (and starts workflows) without one; the 2xx means exactly that\n` +
      `  machine: ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(2)} at start (load generator, server and Temporal share them)\n`,
  );
  // Warm-up: the first delivery pays for JIT, connection setup and the namespace cache; not counted.
  await stack.deliver('issue_comment', issueCommentEvent(prs[0]!, { id: 4_999_999, nodeId: 'IC_warm', body: '/help', author: 'bob' }));
  const { results, wallSeconds } = await fire(stack, payloads);
  const accepted = printResults(results, wallSeconds);
  const signalsGood = await verifySignals(stack.temporal.client, prs, results);
  await terminateAll(stack.temporal.client, prs);
  return accepted === total && signalsGood;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'terrapin-bench-'));
  const stops: Stops = [];
  let exitCode = 0;
  try {
    if (!(await bench(tmp, stops))) exitCode = 1;
  } catch (err) {
    exitCode = 1;
    process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  } finally {
    await stopAll(stops);
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

if (import.meta.main) await main();
