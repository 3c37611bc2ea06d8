// The pieces of the run records that need no server: the visibility query a filter becomes (and the
// values it refuses), the status summary line, the log tail a run keeps, and how times and options read.
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createLogTailActivities } from '../../activities/log-tail.ts';
import { BadInputError, runsQuery, type RunSummary } from '../../operator/records.ts';
import { summaryLine } from '../../operator/status.ts';
import { relativeTime } from '../../operator/time.ts';
import { parseLimit, parseRepo, parseSince, renderTable } from '../../cli/output.ts';
import { RUN_LOG_TAIL_BYTES, runLogFile } from '../../shared/runs.ts';

describe('runsQuery', () => {
  test('a filter becomes one query over projectRun workflows', () => {
    expect(runsQuery({})).toBe("WorkflowType = 'projectRun'");
    expect(runsQuery({ repository: 'acme/infra', project: 'app', kinds: ['apply', 'destroy'], since: new Date('2026-01-31T00:00:00Z') })).toBe(
      "WorkflowType = 'projectRun' AND TerrapinRepository = 'acme/infra' AND TerrapinProject = 'app' AND TerrapinKind IN ('apply', 'destroy') AND StartTime >= '2026-01-31T00:00:00.000Z'",
    );
  });

  test('a value that could change the query is refused, not escaped', () => {
    expect(() => runsQuery({ project: "app' OR TerrapinProject != '" })).toThrow(BadInputError);
    expect(() => runsQuery({ repository: 'acme/infra\\' })).toThrow(/quotes and backslashes are not allowed/);
    expect(() => runsQuery({ kinds: ['deploy' as never] })).toThrow(/kind: unknown deploy \(one of plan, apply, rollback, destroy, drift\)/);
  });
});

describe('summaryLine', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  const run = (over: Partial<RunSummary>): RunSummary => ({
    runId: 'run:acme/infra:app:apply:1a2b3c4-1', repository: 'acme/infra', project: 'app', kind: 'apply', trigger: 'merge', pr: 12, actor: 'alice', approvers: [],
    revision: '1a2b3c4'.padEnd(40, '0'), outcome: 'applied', status: 'completed', startedAt: '2026-06-01T09:58:00Z', closedAt: '2026-06-01T10:00:00Z', counts: null, ...over,
  });
  const base = { repository: 'acme/infra', project: 'app', pendingPlans: [], lock: null, deployQueue: null, warnings: [] };

  test("the issue's example", () => {
    expect(summaryLine({ ...base, lastApply: run({ approvers: ['bob'] }), drift: { lastCheck: run({ kind: 'drift', outcome: 'clean' }), issue: null } }, now)).toBe(
      'last applied 2 hours ago by alice, approved by bob, no pending changes, no drift',
    );
  });

  test('a failed apply, pending plans, a deploy under way, a lock, an open drift issue', () => {
    const line = summaryLine(
      {
        ...base,
        lastApply: run({ outcome: 'apply-failed', closedAt: '2026-05-30T12:00:00Z' }),
        pendingPlans: [{ pr: 14, url: 'u', revision: 'r', summary: 's', approvals: [] }, { pr: 15, url: 'u', revision: 'r', summary: 's', approvals: [] }],
        deployQueue: { deployed: null, current: { revision: 'abcdef0123', phase: 'waiting-approval' }, queued: ['x'] },
        lock: { lockId: 'lock:acme/infra:app:default', holder: { pr: 14, url: 'u' }, waiting: [] },
        drift: { lastCheck: run({ kind: 'drift', outcome: 'drifted' }), issue: { number: 7, url: 'u' } },
      },
      now,
    );
    expect(line).toBe('last apply 2 days ago by alice: apply-failed, 2 pending plans (#14, #15), deploying abcdef0 (waiting-approval), 1 queued to deploy, locked by #14, drifted (issue #7)');
  });

  test('nothing yet', () => {
    expect(summaryLine({ ...base, lastApply: null, drift: { lastCheck: null, issue: 'unknown' } }, now)).toBe('never applied, no pending changes, drift never checked');
  });
});

describe('the log tail a run keeps', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'terrapin-tail-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test('a short log whole; a long one cut to its last 16 KB at a line start', async () => {
    const { readLogTail } = createLogTailActivities({ dataDir });
    const short = join(dataDir, 'apply.log');
    await writeFile(short, '$ terraform apply\nApply complete!\n');
    expect(await readLogTail({ file: short })).toEqual({ tail: '$ terraform apply\nApply complete!\n', truncated: false });
    const long = join(dataDir, 'long.log');
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i} ${'é'.repeat(5)}`);
    await writeFile(long, `${lines.join('\n')}\n`);
    const { tail, truncated } = await readLogTail({ file: long });
    expect(truncated).toBe(true);
    expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(RUN_LOG_TAIL_BYTES);
    expect(tail.endsWith('line 1999 ééééé\n')).toBe(true);
    expect(tail).toMatch(/^line \d+ ééééé\n/);
    expect(tail).not.toContain('\uFFFD');
  });

  test('nothing from outside the data dir, through a symlink, or a file that is gone', async () => {
    const { readLogTail } = createLogTailActivities({ dataDir });
    const outside = await mkdtemp(join(tmpdir(), 'terrapin-tail-outside-'));
    try {
      await writeFile(join(outside, 'secret'), 'not a log');
      expect(await readLogTail({ file: join(outside, 'secret') })).toEqual({ tail: '', truncated: false });
      await symlink(join(outside, 'secret'), join(dataDir, 'link.log'));
      expect(await readLogTail({ file: join(dataDir, 'link.log') })).toEqual({ tail: '', truncated: false });
      expect(await readLogTail({ file: join(dataDir, 'gone.log') })).toEqual({ tail: '', truncated: false });
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  test("a run's log file: the apply log, else what failed, else its plan", () => {
    const base = { runId: 'r', kind: 'plan' as const, project: 'p', sha: 's', workDir: 'w', label: 'l' };
    const plan = { planFile: 'f', planSha256: 'h', summary: {} as never, planTextFile: 'plan.diff.txt', showJsonFile: 'plan.json' };
    expect(runLogFile({ ...base, outcome: 'applied', logFile: 'apply.log', plan })).toBe('apply.log');
    expect(runLogFile({ ...base, outcome: 'failed', failure: { outputFile: 'plan-error.log' } })).toBe('plan-error.log');
    expect(runLogFile({ ...base, outcome: 'planned', plan })).toBe('plan.diff.txt');
    expect(runLogFile({ ...base, outcome: 'failed', failure: { error: 'no terraform' } })).toBeUndefined();
  });
});

describe('how the CLI reads and writes values', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  test('relative times', () => {
    expect(relativeTime(new Date('2026-06-01T11:59:30Z'), now)).toBe('just now');
    expect(relativeTime(new Date('2026-06-01T11:59:00Z'), now)).toBe('1 minute ago');
    expect(relativeTime(new Date('2026-06-01T10:00:00Z'), now)).toBe('2 hours ago');
    expect(relativeTime(new Date('2026-05-29T12:00:00Z'), now)).toBe('3 days ago');
    expect(relativeTime(new Date('2026-01-02T12:00:00Z'), now)).toBe('2026-01-02');
  });

  test('--since, --limit, --repo', () => {
    expect(parseSince('30d', now).toISOString()).toBe('2026-05-02T12:00:00.000Z');
    expect(parseSince('12h', now).toISOString()).toBe('2026-06-01T00:00:00.000Z');
    expect(parseSince('2026-01-31', now).toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(() => parseSince('yesterday', now)).toThrow(/--since: expected a duration/);
    expect(parseLimit('20')).toBe(20);
    for (const bad of ['0', '-1', '1.5', 'x']) expect(() => parseLimit(bad)).toThrow(/--limit/);
    expect(parseRepo('acme/infra')).toEqual({ owner: 'acme', name: 'infra', fullName: 'acme/infra' });
    expect(() => parseRepo('acme')).toThrow(/expected owner\/repo/);
  });

  test('tables: aligned columns, no borders, no trailing spaces, no colour off a terminal', () => {
    expect(renderTable(['A', 'LONGER'], [['x', '1'], ['yyyy', '22']])).toBe('A     LONGER\nx     1\nyyyy  22');
  });
});
