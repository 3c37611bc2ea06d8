// The `terrapin` CLI against a real Temporal dev server holding real runs: scenarios of test/scenarios played
// on the harness (a PR apply, a deploy after merge, drift checks, a PR left open with its plan waiting), then
// the CLI run as a subprocess (`node bin/terrapin.mjs …`) the way an operator runs it.
import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { loadScenario, runScenario } from '../scenarios/runner.ts';
import { searchAttributePairs } from '../../shared/records.ts';
import { liveLogFile } from '../../shared/runs.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/terrapin.mjs');

let h: Harness;
let tmp: string;
let cwd: string;

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-cli-'));
  cwd = await mkdtemp(join(tmpdir(), 'terrapin-cli-cwd-'));
  h.allowRunnerPath(tmp);
  // acme/happy-path: a PR planned, approved, applied, merged. acme/deploy-after-merge: a deploy after merge.
  // acme/drift: drift found, then fixed. acme/cli-pending: happy-path's PR opened and planned, left open.
  for (const name of ['happy-path', 'deploy-after-merge', 'drift']) await runScenario(h, loadScenario(name), tmp);
  const happy = loadScenario('happy-path');
  await runScenario(h, { ...happy, name: 'cli-pending', file: { ...happy.file, steps: happy.file.steps.slice(0, 2) } }, tmp);
}, 600_000);
afterAll(async () => {
  await h?.teardown();
  for (const d of [tmp, cwd]) if (d) await rm(d, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as a subprocess, with only the environment an operator's shell would give it. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  const base = { PATH: process.env.PATH, HOME: process.env.HOME, TEMPORAL_ADDRESS: h.env.address, TERRAPIN_DATA_DIR: h.config.dataDir };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...base, ...env } as NodeJS.ProcessEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const json = async (args: string[], env?: Record<string, string | undefined>) => {
  const r = await cli([...args, '--json'], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
};

/** One line on stderr, no stack trace, nothing on stdout, the documented exit code. */
function expectOneLineError(r: Result, code: number, message: RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

/** Every key and the type of every value: the --json contract scripts rely on. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length ? [shape(value[0])] : [];
  if (value === null) return 'null';
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value as object).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, shape(v)]));
  return typeof value;
}

/** An apply's record: its counts are those of the plan it applied, as the starter passed them on. */
const RUN_SHAPE = {
  actor: 'string',
  approvers: ['string'],
  closedAt: 'string',
  counts: { add: 'number', change: 'number', destroy: 'number' },
  kind: 'string',
  outcome: 'string',
  pr: 'number',
  project: 'string',
  repository: 'string',
  revision: 'string',
  runId: 'string',
  startedAt: 'string',
  status: 'string',
  trigger: 'string',
};

describe('terrapin history', () => {
  test('--json: the PR apply and its plan, newest first, with who asked and who approved', async () => {
    const out = await json(['history', '-r', 'acme/happy-path', '-p', 'default']);
    expect(Object.keys(out).sort()).toEqual(['more', 'project', 'repository', 'runs']);
    expect(out).toMatchObject({ repository: 'acme/happy-path', project: 'default', more: false });
    const runs = out.runs as Array<Record<string, unknown>>;
    expect(runs.map((r) => [r.kind, r.trigger, r.pr, r.outcome])).toEqual([
      ['apply', 'pr', 1, 'applied'],
      ['plan', 'pr', 1, 'planned'],
    ]);
    const apply = runs[0]!;
    expect(shape(apply)).toEqual(RUN_SHAPE);
    expect(apply).toMatchObject({ actor: 'bob', approvers: ['bob'], status: 'completed', counts: { add: 1, change: 0, destroy: 0 } });
    expect(runs[1]).toMatchObject({ actor: 'alice', approvers: [], counts: { add: 1, change: 0, destroy: 0 } });
    expect(apply.runId).toMatch(/^run:acme\/happy-path:default:apply:[0-9a-f]{7}-\d+$/);
    expect(apply.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(Date.parse(apply.startedAt as string)).toBeLessThanOrEqual(Date.parse(apply.closedAt as string));
  });

  test('--kind, --limit and more: only what was asked, and whether there is more', async () => {
    const applies = await json(['history', '-r', 'acme/happy-path', '--kind', 'apply']);
    expect(applies.runs.map((r: { kind: string }) => r.kind)).toEqual(['apply']);
    const one = await json(['history', '-r', 'acme/happy-path', '--limit', '1']);
    expect(one.runs).toHaveLength(1);
    expect(one.more).toBe(true);
    const deploys = await json(['history', '-r', 'acme/deploy-after-merge', '--kind', 'apply']);
    expect(deploys.runs.map((r: { trigger: string; actor: string; pr: number }) => [r.trigger, r.actor, r.pr])).toEqual([['merge', 'bob', 1]]);
    const future = await json(['history', '-r', 'acme/happy-path', '--since', '2099-01-01']);
    expect(future.runs).toEqual([]);
  });

  test('human output: an aligned table with relative times; the project column only when not filtered', async () => {
    const r = await cli(['history', '-r', 'acme/drift']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^WHEN\s+PROJECT\s+KIND\s+TRIGGER\s+PR\s+ACTOR\s+APPROVED BY\s+REVISION\s+OUTCOME\s+\+\/~\/-\s+RUN$/);
    // Newest first: the clean check after the fix, then the two drifted ones.
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(1, 4))).toEqual([
      ['infra', 'drift', 'drift'],
      ['infra', 'drift', 'manual'],
      ['infra', 'drift', 'drift'],
    ]);
    expect(lines[1]).toMatch(/^(just now|\d+ minutes? ago)\s/);
    expect(lines[1]).toMatch(/\sclean\s/);
    // Columns line up: every row's RUN starts where the header's does.
    const at = lines[0]!.indexOf('RUN');
    for (const l of lines.slice(1)) expect(l.indexOf('run:acme/drift:infra:drift:')).toBe(at);
    // Not a terminal: no colour escapes.
    expect(r.stdout).not.toMatch(/\x1b\[/);
  });
});

describe('terrapin status', () => {
  test('--json: last deploy with its approver, the deploy queue, drift unknown without GitHub credentials', async () => {
    const out = await json(['status', '-r', 'acme/deploy-after-merge']);
    expect(Object.keys(out).sort()).toEqual(['otherLocks', 'projects', 'repository']);
    expect(out.projects).toHaveLength(1);
    const web = out.projects[0];
    expect(Object.keys(web).sort()).toEqual(['deployQueue', 'drift', 'lastApply', 'lock', 'pendingPlans', 'project', 'repository', 'summary', 'warnings']);
    expect(shape(web.lastApply)).toEqual(RUN_SHAPE);
    expect(web.lastApply).toMatchObject({ kind: 'apply', trigger: 'merge', actor: 'bob', approvers: ['bob'], outcome: 'applied', pr: 1 });
    // An apply's record carries the counts of the plan it applied.
    expect(web.lastApply.counts).toEqual({ add: 0, change: 1, destroy: 0 });
    expect(web.deployQueue).toEqual({ deployed: web.lastApply.revision, current: null, queued: [] });
    expect(web.pendingPlans).toEqual([]);
    expect(web.lock).toBeNull();
    expect(web.drift).toEqual({ lastCheck: null, issue: 'unknown' });
    expect(web.summary).toMatch(/^last applied (just now|\d+ minutes? ago) by bob, approved by bob, no pending changes, drift never checked$/);
  });

  test('an open PR: its plan is pending, with the link, and it holds the lock', async () => {
    const out = await json(['status', '-r', 'acme/cli-pending', '-p', 'default']);
    const app = out.projects[0];
    expect(app.lastApply).toBeNull();
    expect(app.pendingPlans).toEqual([
      { pr: 1, url: 'https://github.com/acme/cli-pending/pull/1', revision: expect.stringMatching(/^[0-9a-f]{40}$/), summary: expect.stringMatching(/1 to add/), approvals: [] },
    ]);
    expect(app.lock).toEqual({ lockId: expect.stringMatching(/^lock:acme\/cli-pending:/), holder: { pr: 1, url: 'https://github.com/acme/cli-pending/pull/1' }, waiting: [] });
    expect(app.summary).toBe('never applied, 1 pending plan (#1), locked by #1, drift never checked');
  });

  test('human output: the summary line and the details, per project; the repository from the git remote', async () => {
    const checkout = await mkdtemp(join(tmpdir(), 'terrapin-cli-checkout-'));
    try {
      await execa('git', ['init', '-q'], { cwd: checkout });
      await execa('git', ['remote', 'add', 'origin', 'git@github.com:acme/drift.git'], { cwd: checkout });
      const r = await new Promise<Result>((resolve) =>
        execFile(process.execPath, [BIN, 'status'], { cwd: checkout, env: { PATH: process.env.PATH, HOME: process.env.HOME, TEMPORAL_ADDRESS: h.env.address } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe('acme/drift');
      expect(lines[2]).toMatch(/^infra  never applied, no pending changes, no drift$/);
      expect(r.stdout).toMatch(/\n  drift\s+checked (just now|\d+ minutes? ago): clean; issue: unknown \(no GitHub credentials\)\n/);
      expect(r.stdout).toMatch(/\n  lock\s+free\n/);
    } finally {
      await rm(checkout, { recursive: true, force: true });
    }
  });
});

describe('terrapin status with the GitHub App\'s credentials', () => {
  /** GitHub Enterprise at a loopback address: every call recorded, anything unexpected answered 404. */
  async function fakeGithub(issues: unknown[]) {
    const calls: Array<{ method: string; url: string; auth: string }> = [];
    const server = createServer((req: IncomingMessage, res) => {
      calls.push({ method: req.method!, url: req.url!, auth: String(req.headers.authorization) });
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'GET' && req.url === '/api/v3/repos/acme/drift/installation') return reply(200, { id: 42 });
      if (req.method === 'POST' && req.url === '/api/v3/app/installations/42/access_tokens') {
        return reply(201, { token: 'ghs_cli-test', expires_at: new Date(Date.now() + 3_600_000).toISOString(), permissions: { issues: 'read' }, repository_selection: 'all' });
      }
      if (req.method === 'GET' && req.url?.startsWith('/api/v3/repos/acme/drift/issues?')) return reply(200, issues);
      reply(404, { message: 'Not Found' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { calls, host, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

  test('the open drift issue, read as the App installed on the repository', async () => {
    const gh = await fakeGithub([
      { number: 9, title: 'Drift detected: infra', labels: [{ name: 'terrapin:drift' }], html_url: 'http://ghe.example/acme/drift/issues/9' },
      { number: 10, title: 'Drift detected: infra (old)', labels: [{ name: 'terrapin:drift' }], html_url: 'http://ghe.example/acme/drift/issues/10' },
    ]);
    try {
      const out = await json(['status', '-r', 'acme/drift'], { APP_ID: '1', PRIVATE_KEY: privateKey, GHE_HOST: gh.host, GHE_PROTOCOL: 'http' });
      const infra = out.projects[0];
      expect(infra.drift.issue).toEqual({ number: 9, url: 'http://ghe.example/acme/drift/issues/9' });
      expect(infra.drift.lastCheck).toMatchObject({ kind: 'drift', outcome: 'clean' });
      expect(infra.summary).toBe('never applied, no pending changes, drifted (issue #9)');
      expect(gh.calls.map((c) => `${c.method} ${c.url.split('?')[0]}`)).toEqual([
        'GET /api/v3/repos/acme/drift/installation',
        'POST /api/v3/app/installations/42/access_tokens',
        'GET /api/v3/repos/acme/drift/issues',
      ]);
      expect(gh.calls[0]!.auth).toMatch(/^bearer eyJ/i); // the App's JWT
      expect(gh.calls[2]!.auth).toBe('token ghs_cli-test');
      expect(new URL(gh.calls[2]!.url, 'http://x').searchParams.get('labels')).toBe('terrapin:drift');
      expect(new URL(gh.calls[2]!.url, 'http://x').searchParams.get('state')).toBe('open');
    } finally {
      await gh.close();
    }
  });

  test('the App not installed on the repository → 3; GitHub refusing the credentials → 4', async () => {
    const gh = await fakeGithub([]);
    try {
      const env = { APP_ID: '1', PRIVATE_KEY: privateKey, GHE_HOST: gh.host, GHE_PROTOCOL: 'http' };
      expectOneLineError(await cli(['status', '-r', 'acme/happy-path'], env), 3, /^terrapin: the GitHub App is not installed on acme\/happy-path/);
    } finally {
      await gh.close();
    }
    const refusing = createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Bad credentials' }));
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    try {
      const env = { APP_ID: '1', PRIVATE_KEY: privateKey, GHE_HOST: `127.0.0.1:${(refusing.address() as AddressInfo).port}`, GHE_PROTOCOL: 'http' };
      expectOneLineError(await cli(['status', '-r', 'acme/drift'], env), 4, /^terrapin: GitHub refused the App's credentials \(401\)/);
    } finally {
      await new Promise<void>((r) => refusing.close(() => r()));
    }
  });
});

describe('terrapin logs', () => {
  test('a run id: the whole scrubbed apply log from the data dir; what it is on stderr', async () => {
    const { runs } = await json(['history', '-r', 'acme/deploy-after-merge', '--kind', 'apply']);
    const r = await cli(['logs', runs[0].runId]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\$ \S*terraform apply -input=false -no-color /);
    expect(r.stdout).toContain('Apply complete! Resources: 0 added, 1 changed, 0 destroyed.');
    expect(r.stderr).toBe(`${runs[0].runId}: apply of web at ${runs[0].revision.slice(0, 7)}, applied, just now\n`.replace('just now', r.stderr.match(/, applied, (.*)\n/)![1]!));
  });

  test("once the merge removed the PR's work dir, the tail the run recorded, and a note saying so", async () => {
    const { runs } = await json(['history', '-r', 'acme/happy-path', '--kind', 'apply']);
    const r = await cli(['logs', runs[0].runId]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Apply complete! Resources: 1 added, 0 changed, 0 destroyed.');
    expect(r.stderr.split('\n')[1]).toMatch(/^note: log from the run's record \(the file is on the worker's disk: \/.*\/apply\.log\)$/);
  });

  test('-p --last --kind, --json; on a machine without the worker\'s disk, the tail the run recorded', async () => {
    const here = await json(['logs', '-r', 'acme/deploy-after-merge', '-p', 'web', '--last', '--kind', 'apply']);
    expect(Object.keys(here).sort()).toEqual(['file', 'note', 'run', 'source', 'text']);
    expect(here).toMatchObject({ source: 'file', note: null, run: { kind: 'apply', trigger: 'merge', outcome: 'applied' } });
    expect(here.text).toContain('Apply complete!');
    const elsewhere = await mkdtemp(join(tmpdir(), 'terrapin-cli-elsewhere-'));
    try {
      const away = await json(['logs', '-r', 'acme/deploy-after-merge', '-p', 'web', '--kind', 'apply'], { TERRAPIN_DATA_DIR: elsewhere });
      expect(away.source).toBe('tail');
      expect(away.text).toBe(here.text);
      expect(away.note).toMatch(/^log from the run's record \(the file is on the worker's disk: /);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  test('a plan run: its plan text; a drift check: its plan; --follow of a finished run prints at once', async () => {
    const plan = await json(['logs', '-r', 'acme/happy-path', '-p', 'default', '--kind', 'plan']);
    expect(plan.text).toContain('terraform_data');
    expect(plan.run).toMatchObject({ kind: 'plan', actor: 'alice', outcome: 'planned' });
    const drift = await cli(['logs', '-r', 'acme/drift', '-p', 'infra', '--follow']);
    expect(drift.code).toBe(0);
    expect(drift.stderr).toMatch(/: drift of infra at [0-9a-f]{7}, clean, /);
  });
});

/**
 * An apply run of acme/<repo> no worker picks up (its task queue has none), so it is running for as long as
 * the test wants, and `terrapin logs --follow` started on it (after `before`, given the run's live log path).
 */
async function followIdleRun(repo: string, before?: (liveLog: string) => Promise<void>) {
  const runId = `run:acme/${repo}:app:apply:0123456-1`;
  const handle = await h.env.client.workflow.start('projectRun', {
    taskQueue: 'cli-test-nobody-polls',
    workflowId: runId,
    args: [{}],
    typedSearchAttributes: searchAttributePairs({ repository: `acme/${repo}`, project: 'app', kind: 'apply', trigger: 'manual', actor: 'carol', headSha: '0123456'.padEnd(40, '0') }),
  });
  await before?.(liveLogFile(h.config.dataDir, runId));
  const child = spawn(process.execPath, [BIN, 'logs', runId, '--follow', '--interval', '0.2'], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TEMPORAL_ADDRESS: h.env.address, TERRAPIN_DATA_DIR: h.config.dataDir },
  });
  return { runId, handle, child };
}

describe('terrapin logs --follow of a running run', () => {
  test('waits while it runs, and exits 1 when it ends without succeeding', async () => {
    const { runId, handle, child } = await followIdleRun('cli-follow');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    const waiting = new Promise<void>((resolve) =>
      child.stderr.on('data', (d) => {
        stderr += d;
        if (stderr.includes('waiting for it to end')) resolve();
      }),
    );
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    await waiting;
    expect(stderr).toMatch(new RegExp(`^${runId}: apply of app running since (just now|\\d+ minutes? ago); waiting for it to end\n$`));
    // Still following while the run goes on: it has not exited, and printed no log.
    expect(child.exitCode).toBeNull();
    expect(stdout).toBe('');
    await handle.terminate('stopped by an operator');
    expect(await exited).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines.slice(1)).toEqual([
      `${runId}: apply of app at 0123456, terminated, just now`,
      'note: the run failed before writing a log: stopped by an operator',
      `terrapin: ${runId} ended terminated`,
    ]);
  });
});

describe('terrapin logs --follow streams a running run', () => {
  test("prints the run's live log line by line as the worker writes it, then says how it ended", async () => {
    // A run no worker picks up, with its live log written here as the worker writes it (whole, scrubbed lines;
    // test/activities/live-log.test.ts shows a worker's terraform writing it).
    const { runId, handle, child } = await followIdleRun('cli-stream', async (live) => {
      await mkdir(dirname(live), { recursive: true });
      await writeFile(live, '$ terraform apply -input=false -no-color plan.tfplan\nterraform_data.server: Creating...\n');
    });
    const live = liveLogFile(h.config.dataDir, runId);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const waiting: Array<{ text: string; resolve: () => void }> = [];
    child.stdout.on('data', (d) => {
      stdout += d;
      for (const w of waiting) if (stdout.includes(w.text)) w.resolve();
    });
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    const seen = (text: string) => new Promise<void>((resolve) => (stdout.includes(text) ? resolve() : waiting.push({ text, resolve })));
    await seen('Creating...\n');
    // A line written half-way is held back until it is whole.
    await appendFile(live, 'terraform_data.server: Still creating... [10s elap');
    await appendFile(live, 'sed]\nterraform_data.server: Creation complete after 12s\n');
    await seen('Creation complete after 12s\n');
    expect(child.exitCode).toBeNull();
    await handle.terminate('stopped by an operator');
    expect(await exited).toBe(1);
    expect(stdout).toBe(
      [
        '$ terraform apply -input=false -no-color plan.tfplan',
        'terraform_data.server: Creating...',
        'terraform_data.server: Still creating... [10s elapsed]',
        'terraform_data.server: Creation complete after 12s',
        '',
      ].join('\n'),
    );
    expect(stderr.trimEnd().split('\n')).toEqual([
      `${runId}: apply of app running since just now; waiting for it to end`,
      `${runId}: apply of app at 0123456, terminated, just now`,
      'note: the run failed before writing a log: stopped by an operator',
      `terrapin: ${runId} ended terminated`,
    ]);
  });
});

describe('bad input: one line on stderr, the documented exit code', () => {
  test('unknown run id, repository or project → 3', async () => {
    expectOneLineError(await cli(['logs', 'run:acme/nope:app:apply:0000000-1']), 3, /^terrapin: no run run:acme\/nope:app:apply:0000000-1$/);
    expectOneLineError(await cli(['status', '-r', 'acme/nope']), 3, /^terrapin: no runs recorded for acme\/nope /);
    expectOneLineError(await cli(['status', '-r', 'acme/happy-path', '-p', 'nope']), 3, /^terrapin: no runs recorded for project nope in acme\/happy-path$/);
    expectOneLineError(await cli(['logs', '-p', 'nope', '--last']), 3, /^terrapin: no runs recorded for project nope$/);
    expectOneLineError(await cli(['logs', 'deploy:acme/deploy-after-merge:web']), 3, /is not a Terrapin run/);
  });

  test('bad options → 2', async () => {
    expectOneLineError(await cli(['history', '--since', 'yesterday']), 2, /^terrapin: --since: expected a duration/);
    expectOneLineError(await cli(['history', '--limit', '0']), 2, /^terrapin: --limit: /);
    expectOneLineError(await cli(['history', '--kind', 'deploy']), 2, /^terrapin: kind: unknown deploy /);
    expectOneLineError(await cli(['history', '-r', 'not a repo']), 2, /^terrapin: --repo: expected owner\/repo/);
    expectOneLineError(await cli(['history', '-p', "x' OR '1'='1"]), 2, /quotes and backslashes are not allowed/);
    expectOneLineError(await cli(['logs']), 2, /^terrapin: which run\? /);
    expectOneLineError(await cli(['status']), 2, /^terrapin: say which repository: -r owner\/repo/);
    expectOneLineError(await cli(['history', '--bogus']), 2, /^terrapin: unknown option '--bogus'/);
    expectOneLineError(await cli(['bogus']), 2, /^terrapin: unknown command 'bogus'/);
  });

  test('Temporal unreachable → 4, saying what to do', async () => {
    const free = 1; // nothing listens on port 1
    expectOneLineError(await cli(['history'], { TEMPORAL_ADDRESS: undefined, TERRAPIN_EMBEDDED_TEMPORAL_PORT: String(free) }), 4, /^terrapin: no Temporal at 127\.0\.0\.1:1 — start Terrapin \(`npm start`\) or set TEMPORAL_ADDRESS$/);
    expectOneLineError(await cli(['status', '-r', 'acme/drift'], { TEMPORAL_ADDRESS: `127.0.0.1:${free}` }), 4, /^terrapin: cannot reach Temporal at 127\.0\.0\.1:1: /);
  });

  test('--help on every command, with examples and the exit codes', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Exit codes:\n  0  success\n  1  failure.*\n  2  usage error.*\n  3  not found.*\n  4  unavailable/);
    for (const command of ['status', 'history', 'logs']) {
      const r = await cli([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: terrapin ${command} `));
      expect(r.stdout).toContain('Examples:\n  $ terrapin ' + command);
      expect(r.stdout).toContain('Exit codes: 0 success, 1 failure, 2 usage error, 3 not found, 4 Temporal unreachable or no credentials.');
    }
  });
});
