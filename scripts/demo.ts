// `npm run demo`: Terrapin end to end on this machine, no GitHub account. Embedded Temporal, the worker and
// the webhook server run in this process; a loopback stand-in plays GitHub (GHE_HOST points at it, so
// Probot and the activities both talk to it); a throwaway git repo made from examples/demo-infra plays the
// repository. Signed webhook deliveries drive two pull requests:
//   PR 1: opened → plan → /approve by a writer who is not the author → applied → merged
//   PR 2: adds a provisioner that exits 1 → plan → /approve → apply fails → rolled back to main → closed
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import { CHECK_APPLY, CHECK_PLAN, prWorkflowId, type PrStatus } from '../shared/contracts.ts';
import type { GithubStandin, RecordedCall, StoredCheckRun } from './github-standin.ts';
import { startLocalStack, stopAll, type Stops } from './local-stack.ts';
import { issueCommentEvent, pullRequestEvent, pullRequestJson, type DemoRepository, type PullRequestSpec } from './webhook-deliveries.ts';

const DEMO_INFRA = fileURLToPath(new URL('../examples/demo-infra/', import.meta.url));
const STEP_TIMEOUT_MS = 60_000;
const OWNER = 'acme';
const REPO = 'demo-infra';
const AUTHOR = 'alice';
const REVIEWER = 'bob';
const WEBHOOK_SECRET = `demo-${randomUUID()}`;
const GIT_ENV = { GIT_AUTHOR_NAME: 'Alice', GIT_AUTHOR_EMAIL: 'alice@example.invalid', GIT_COMMITTER_NAME: 'Alice', GIT_COMMITTER_EMAIL: 'alice@example.invalid' };

const PR1_VARIABLES = readFileSync(join(DEMO_INFRA, 'variables.tf'), 'utf8').replace(/default\s*=\s*1\b/, 'default     = 2');
const PR1_CACHE_TF = `resource "terraform_data" "cache" {
  input = {
    name        = "\${var.environment}-cache"
    environment = var.environment
  }
}
`;
const PR2_MIGRATION_TF = `# A data migration that fails: its provisioner exits 1, so the apply fails part-way.
resource "terraform_data" "migration" {
  input = "v2"

  provisioner "local-exec" {
    command = "echo 'migrating schema to v2...' && echo 'error: column \\"replicas\\" is locked' >&2 && exit 1"
  }
}
`;

class DemoStepError extends Error {}

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const say = (line: string) => process.stdout.write(`[${elapsed()}] ${line}\n`);
const indent = (text: string, maxLines = 30) => {
  const lines = text.replace(/<!-- terrapin:[^>]*-->\n?/g, '').trimEnd().split('\n');
  const shown = lines.slice(0, maxLines).map((l) => `          │ ${l}`);
  if (lines.length > maxLines) shown.push(`          │ … ${lines.length - maxLines} more lines`);
  return shown.join('\n');
};

/** Prints what Terrapin does on "GitHub", as it happens. */
function narrate(call: RecordedCall): void {
  const res = call.response as Record<string, any> | undefined;
  if (call.status >= 400) {
    say(`[github] ${call.method} ${call.path} → ${call.status} ${res?.message ?? ''}`);
    return;
  }
  switch (call.route) {
    case 'POST /repos/:owner/:repo/check-runs':
    case 'PATCH /repos/:owner/:repo/check-runs/:check_run_id': {
      const state = res?.conclusion ? `${res.status}: ${res.conclusion}` : res?.status;
      const title = res?.output?.title ? ` — ${res.output.title}` : '';
      say(`[check] ${res?.name} ${state} (${String(res?.head_sha).slice(0, 7)})${title}`);
      return;
    }
    case 'POST /repos/:owner/:repo/issues/:issue_number/comments':
      say(`[comment] on #${call.path.split('/')[5]} by ${res?.user?.login}:\n${indent(String(res?.body))}`);
      return;
    case 'PATCH /repos/:owner/:repo/issues/comments/:comment_id':
      say(`[comment edited] ${res?.id}:\n${indent(String(res?.body))}`);
      return;
    case 'POST /repos/:owner/:repo/issues/comments/:comment_id/reactions':
      say(`[reaction] ${(call.body as { content?: string })?.content === 'eyes' ? '👀' : (call.body as { content?: string })?.content} on comment ${call.path.split('/')[6]}`);
      return;
    case 'POST /graphql': {
      const minimized = (res as { data?: { minimizeComment?: unknown } })?.data?.minimizeComment;
      if (minimized) say('[comment minimized] an older plan comment, as OUTDATED');
      return;
    }
  }
}

/** Resolves with check()'s first truthy value; checked on every GitHub call and every 250 ms. */
async function waitFor<T>(standin: GithubStandin, what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // Real GitHub would have rejected this call too: the demo fails rather than paper over a defect.
    const rejected = standin.calls.find((c) => c.status >= 400);
    if (rejected) {
      const message = (rejected.response as { message?: string } | undefined)?.message ?? '';
      throw new DemoStepError(`GitHub rejected a call from Terrapin while waiting for ${what}: ${rejected.method} ${rejected.path} → ${rejected.status} ${message}`);
    }
    const value = await check();
    if (value) return value;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 250);
      const off = standin.onCall(done);
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }
  throw new DemoStepError(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: GIT_ENV })).stdout.trim();
}

/** examples/demo-infra as a git repo on main, with the local backend moved to an absolute state path. */
async function createDemoRepo(dir: string, stateFile: string): Promise<void> {
  cpSync(DEMO_INFRA, dir, { recursive: true, filter: (src) => !/\.terraform|tfstate/.test(src) });
  const mainTf = join(dir, 'main.tf');
  const rewritten = readFileSync(mainTf, 'utf8').replace(/(backend\s+"local"\s*\{\s*path\s*=\s*)"[^"]*"/, `$1${JSON.stringify(stateFile)}`);
  if (!rewritten.includes(stateFile)) throw new Error('examples/demo-infra/main.tf has no local backend path to rewrite');
  writeFileSync(mainTf, rewritten);
  await git(dir, 'init', '-q', '-b', 'main');
  await git(dir, 'config', 'commit.gpgsign', 'false');
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', 'Initial infrastructure');
}

async function commitOnBranch(dir: string, branch: string, files: Record<string, string>, message: string): Promise<string> {
  await git(dir, 'checkout', '-q', '-b', branch, 'main');
  for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', message);
  const sha = await git(dir, 'rev-parse', 'HEAD');
  await git(dir, 'checkout', '-q', 'main');
  return sha;
}

function stateResources(stateFile: string): string[] {
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { resources?: { type: string; name: string; instances: { status?: string }[] }[] };
  return (state.resources ?? []).map((r) => `${r.type}.${r.name}${r.instances.some((i) => i.status === 'tainted') ? ' (tainted)' : ''}`);
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'terrapin-demo-'));
  const stops: Stops = [];
  let failed = false;
  try {
    say(`Terrapin demo — everything in ${tmp}`);
    const terraform = await execa('terraform', ['version'], { reject: false });
    if (terraform.exitCode !== 0) throw new DemoStepError('terraform is not installed (https://developer.hashicorp.com/terraform/install)');
    const demo = await startDemo(tmp, stops);
    const afterPr1 = await pr1Applies(demo);
    const afterRollback = await pr2RollsBack(demo);
    summarize(demo, afterPr1, afterRollback);
  } catch (err) {
    failed = true;
    const message = err instanceof DemoStepError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`\n✗ demo failed: ${message}\n  files kept in ${tmp}\n`);
  } finally {
    await stopAll(stops);
    if (!failed) rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

type Demo = Awaited<ReturnType<typeof startDemo>>;

/** The GitHub stand-in, the repository, Temporal, a worker and the webhook server, and ways to drive them. */
async function startDemo(tmp: string, stops: Stops) {
  const repoDir = join(tmp, 'repo');
  const stateFile = join(tmp, 'state', 'terraform.tfstate');
  mkdirSync(dirname(stateFile), { recursive: true });
  const { standin, temporal, uiUrl, webhookUrl, deliver: send } = await startLocalStack(
    {
      tmp,
      webhookSecret: WEBHOOK_SECRET,
      taskQueue: 'terrapin-demo',
      linkTemporalUi: true,
      env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
      // terraform runs sandboxed: the demo's local state lives outside the checkout, so the operator lets it through.
      configure: (config) => config.operatorPolicy.runner.paths.push({ path: dirname(stateFile), writable: true }),
    },
    stops,
  );
  standin.onCall(narrate);
  standin.setPermission(AUTHOR, 'write');
  standin.setPermission(REVIEWER, 'write');
  await createDemoRepo(repoDir, stateFile);
  const repo: DemoRepository = {
    owner: OWNER,
    name: REPO,
    cloneUrl: pathToFileURL(repoDir).href,
    installationId: 77,
    htmlOrigin: `http://${standin.host}`,
    apiBaseUrl: standin.baseUrl,
  };
  say(`GitHub stand-in ${standin.baseUrl} · webhooks ${webhookUrl} · Temporal UI ${uiUrl}`);

  const deliver = async (event: string, payload: Record<string, unknown>, description: string) => {
    say(`▶ ${description}`);
    const res = await send(event, payload);
    if (res.status >= 300) throw new DemoStepError(`webhook ${event} was answered ${res.status}: ${res.body}`);
  };
  const comment = async (pr: PullRequestSpec, login: string, body: string) => {
    const stored = standin.addIssueComment(OWNER, REPO, pr.number, { body, login });
    await deliver('issue_comment', issueCommentEvent(pr, { id: stored.id, nodeId: stored.node_id, body, author: login }), `${login} comments "${body}" on #${pr.number}`);
  };
  const steps: { name: string; seconds: number }[] = [];
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await run();
    steps.push({ name, seconds: (Date.now() - started) / 1000 });
    return result;
  };
  return { standin, repo, repoDir, stateFile, temporal, deliver, comment, steps, step };
}

/** A pull request by AUTHOR of `files` on a new branch off main, opened and planned as one step. */
async function openPr(demo: Demo, number: number, title: string, branch: string, files: Record<string, string>, message: string): Promise<PullRequestSpec> {
  const { standin, repo, repoDir, temporal, deliver, step } = demo;
  const base = await git(repoDir, 'rev-parse', 'main');
  const pr: PullRequestSpec = { repo, number, title, author: AUTHOR, head: { ref: branch, sha: await commitOnBranch(repoDir, branch, files, message) }, base: { ref: 'main', sha: base } };
  await step(`PR ${number} opened → planned`, async () => {
    standin.setPullRequest(OWNER, REPO, number, pullRequestJson(pr));
    await deliver('pull_request', pullRequestEvent('opened', pr, AUTHOR), `PR #${number} "${title}" opened by ${AUTHOR}`);
    await waitForPlan(standin, temporal.client, pr);
  });
  return pr;
}

/** The PR in its closed (or merged) shape is delivered as pull_request.closed; its workflow ends. */
async function closePr({ standin, temporal, deliver, step }: Demo, closed: PullRequestSpec, by: string, description: string): Promise<void> {
  await step(`PR ${closed.number} ${closed.merged ? 'merged' : 'closed'} → workflow done`, async () => {
    standin.setPullRequest(OWNER, REPO, closed.number, pullRequestJson(closed));
    await deliver('pull_request', pullRequestEvent('closed', closed, by), description);
    await waitForWorkflowEnd(temporal.client, closed);
  });
}

/** PR 1 plans, is approved, applies and merges: the state it leaves. */
async function pr1Applies(demo: Demo): Promise<string[]> {
  const { standin, repoDir, stateFile, comment, step } = demo;
  const files = { 'variables.tf': PR1_VARIABLES, 'cache.tf': PR1_CACHE_TF };
  const pr1 = await openPr(demo, 1, 'Scale the app to 2 replicas and add a cache', 'scale-app', files, 'Scale the app, add a cache');
  await step('PR 1 approved → applied', async () => {
    await comment(pr1, REVIEWER, '/approve');
    const apply = await waitForCheck(standin, pr1, CHECK_APPLY);
    if (apply.conclusion !== 'success') throw new DemoStepError(`PR #1's apply ended "${apply.conclusion}": ${apply.output.summary}`);
  });
  const afterPr1 = stateResources(stateFile);
  say(`state after PR #1: ${afterPr1.join(', ')}`);

  await git(repoDir, 'merge', '-q', '--no-ff', 'scale-app', '-m', 'Merge pull request #1 from acme/scale-app');
  const merged: PullRequestSpec = { ...pr1, state: 'closed', merged: true, mergeCommitSha: await git(repoDir, 'rev-parse', 'main'), mergedBy: REVIEWER };
  await closePr(demo, merged, REVIEWER, `PR #1 merged by ${REVIEWER}`);
  return afterPr1;
}

/** PR 2 plans, is approved, fails to apply and is rolled back, then closed: the state it leaves. */
async function pr2RollsBack(demo: Demo): Promise<string[]> {
  const { standin, stateFile, comment, step } = demo;
  const pr2 = await openPr(demo, 2, 'Run the v2 data migration', 'migrate-v2', { 'migration.tf': PR2_MIGRATION_TF }, 'Add the v2 migration');
  await step('PR 2 approved → apply failed → rolled back', async () => {
    await comment(pr2, REVIEWER, '/approve');
    const apply = await waitForCheck(standin, pr2, CHECK_APPLY);
    if (apply.conclusion !== 'failure') throw new DemoStepError(`PR #2's apply was expected to fail, but ended "${apply.conclusion}"`);
    const report = standin.comments(OWNER, REPO, 2).find((c) => /Apply failed/.test(c.body));
    if (!report || !/rolled back/.test(report.body)) {
      throw new DemoStepError(`PR #2's apply failed but no rollback was reported:\n${report?.body ?? '(no apply comment)'}`);
    }
  });
  const afterRollback = stateResources(stateFile);
  say(`state after the rollback: ${afterRollback.join(', ')}`);
  if (afterRollback.some((r) => r.startsWith('terraform_data.migration'))) {
    throw new DemoStepError('the rollback left terraform_data.migration in the state');
  }
  await closePr(demo, { ...pr2, state: 'closed' }, AUTHOR, `PR #2 closed by ${AUTHOR} without merging`);
  return afterRollback;
}

function summarize({ standin, steps }: Demo, afterPr1: string[], afterRollback: string[]): void {
  const checks = standin.checkRuns(OWNER, REPO);
  const botComments = [1, 2].flatMap((n) => standin.comments(OWNER, REPO, n)).filter((c) => c.user.type === 'Bot');
  process.stdout.write('\nSummary\n');
  for (const s of steps) process.stdout.write(`  ✓ ${s.name.padEnd(46)} ${s.seconds.toFixed(1)}s\n`);
  process.stdout.write(
    `  ${botComments.length} comments (${botComments.filter((c) => c.minimizedReason).length} minimized), ` +
      `${checks.length} check runs, ${standin.calls.length} GitHub API calls (${standin.calls.filter((c) => c.status >= 400).length} errors)\n` +
      `  state: ${afterPr1.join(', ')} after PR #1; ${afterRollback.join(', ')} after PR #2's rollback\n` +
      `  total ${((Date.now() - t0) / 1000).toFixed(1)}s\n`,
  );
}

/** The plan is commented, its checks are done and the workflow is idle, so an /approve is taken at once. */
async function waitForPlan(standin: GithubStandin, client: Client, pr: PullRequestSpec): Promise<void> {
  const plan = await waitForCheck(standin, pr, CHECK_PLAN);
  if (plan.conclusion !== 'success') throw new DemoStepError(`plan of PR #${pr.number} ended "${plan.conclusion}": ${plan.output.summary}`);
  const handle = client.workflow.getHandle(prWorkflowId(OWNER, REPO, pr.number));
  await waitFor(standin, `PR #${pr.number}'s plan to be ready for approval`, async () => {
    const state = await handle.query<PrStatus>('prState').catch(() => undefined);
    return state && !state.job && state.plan?.status === 'ready' && state.plan.sha === pr.head.sha;
  });
}

async function waitForCheck(standin: GithubStandin, pr: PullRequestSpec, name: string): Promise<StoredCheckRun> {
  return waitFor(standin, `check ${name} on PR #${pr.number} to complete`, () =>
    standin.checkRuns(OWNER, REPO).findLast((c) => c.name === name && c.head_sha === pr.head.sha && c.status === 'completed'),
  );
}

async function waitForWorkflowEnd(client: Client, pr: PullRequestSpec): Promise<void> {
  const id = prWorkflowId(OWNER, REPO, pr.number);
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new DemoStepError(`timed out waiting for workflow ${id} to finish`)), STEP_TIMEOUT_MS).unref(),
  );
  const outcome = await Promise.race([client.workflow.getHandle(id).result(), timeout]);
  say(`[temporal] ${id} finished: ${JSON.stringify(outcome)}`);
}

if (import.meta.main) await main();
