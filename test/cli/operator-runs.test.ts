// `terrapin plan | apply | destroy | drift` against a real Temporal dev server and worker: the CLI prints
// the run id and the approval link, `--wait` follows a run and exits by its outcome, `--json` shapes are
// pinned, and bad input is one line on stderr with a documented exit code. GitHub is mocked at HTTP; the
// repository lookup (GitHub App credentials) is replaced by the fixture's reference.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { operatorCli } from '../../cli/commands/operator-runs.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueOnlyCommentEvent } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { freePort } from '../helpers/free-port.ts';

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];
const real = { ...operatorCli };

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-cli-op-'));
  h.allowRunnerPath(tmp);
  operatorCli.connect = async () => ({ client: h.env.client, taskQueue: h.taskQueue, close: async () => {} });
});
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});
afterAll(async () => {
  Object.assign(operatorCli, real);
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function repoNamed(name: string): Promise<FixtureRepo> {
  const repo = await createFixtureRepo({
    '.terrapin.yml': 'projects:\n  - name: app\n    dir: app\n',
    'app/main.tf': terraformFixture({ stateFile: join(tmp, `${name}.tfstate`), resources: { server: { input: 'v1' } } }),
  });
  repos.push(repo);
  operatorCli.resolveRepo = async (fullName) => {
    if (fullName !== `acme/${name}`) throw new Error(`unexpected repository ${fullName}`);
    return { owner: 'acme', name, installationId: 42, cloneUrl: repo.cloneUrl, defaultBranch: 'main' };
  };
  return repo;
}

/** Runs the CLI in-process: exit code, stdout, stderr. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  try {
    const code = await main(['node', 'terrapin', ...args]);
    return { code, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  }
}

describe('terrapin plan | apply | destroy | drift', () => {
  test('apply prints the run and the approval link (--json); a second request while it waits is refused', async () => {
    const repo = await repoNamed('cli-apply');
    const gh = new GithubMock('acme', 'cli-apply');
    gh.label('terrapin:gate', true).createIssue((b) => b.title === 'Apply requested: app' && b.body.includes('requested by @olivia'), 11);
    const started = await cli('apply', '-p', 'app', '-r', 'acme/cli-apply', '--as', 'olivia', '--json');
    expect(started).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(started.stdout)).toEqual({ workflowId: 'operator:acme/cli-apply:app:apply', kind: 'apply', issueUrl: 'https://github.com/acme/cli-apply/issues/11', issueNumber: 11 });
    await gh.settled();

    const again = await cli('apply', '-p', 'app', '-r', 'acme/cli-apply');
    expect(again).toEqual({ code: 1, stdout: '', stderr: 'terrapin: an apply of app is already in progress (operator:acme/cli-apply:app:apply); wait for it, or approve or let it expire\n' });

    // The approval happens on GitHub, never in the CLI.
    gh.reaction(1101).permission('bob', 'write').comment(11, /^Approved by @bob/).comment(11, /\*\*Applied\.\*\*/).closeIssue(11);
    const who = { owner: 'acme', repo: 'cli-apply', installationId: 42, cloneUrl: repo.cloneUrl, author: 'alice' };
    await h.receive('issue_comment', issueOnlyCommentEvent(who, { number: 11, title: 'Apply requested: app', labels: ['terrapin:gate'] }, '/approve', { login: 'bob', commentId: 1101 }));
    expect(await h.env.client.workflow.getHandle('operator:acme/cli-apply:app:apply').result()).toMatchObject({ outcome: 'applied', approvers: ['bob'] });
    await gh.settled();
    gh.assertNoUnexpected();
  });

  test('plan --wait prints the outcome table and exits 0; --json pins the shape', async () => {
    await repoNamed('cli-plan');
    const human = await cli('plan', '-p', 'app', '-r', 'acme/cli-plan', '--wait');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Plan of app in acme\/cli-plan started\.\n {2}run: {6}operator:acme\/cli-plan:app:plan\n✓ plan: planned\nPROJECT +OUTCOME +PLAN +RUN\napp +planned +Plan: 1 to add, 0 to change, 0 to destroy\. +run:acme\/cli-plan:app:plan:[0-9a-f]{7}-1\n$/);
    const json = await cli('plan', '-p', 'app', '-r', 'acme/cli-plan', '--wait', '--json');
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout);
    expect(parsed).toEqual({
      workflowId: 'operator:acme/cli-plan:app:plan',
      kind: 'plan',
      result: { outcome: 'planned', sha: expect.stringMatching(/^[0-9a-f]{40}$/), projects: [{ project: 'app', runId: expect.stringMatching(/^run:acme\/cli-plan:app:plan:/), outcome: 'planned', summaryLine: 'Plan: 1 to add, 0 to change, 0 to destroy.' }] },
    });
  });

  test('bad input: unknown project, a ref other than the default branch, no -p, Temporal unreachable: one line, documented exit codes', async () => {
    await repoNamed('cli-bad');
    expect(await cli('plan', '-p', 'nope', '-r', 'acme/cli-bad')).toEqual({ code: 3, stdout: '', stderr: 'terrapin: no project nope in .terrapin.yml of acme/cli-bad at its default branch\n' });
    expect(await cli('apply', '-p', 'app', '-r', 'acme/cli-bad', '--ref', 'feature')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'terrapin: operator runs use the default branch (main), not feature: change other branches through a pull request\n',
    });
    const noProject = await cli('destroy', '-r', 'acme/cli-bad');
    expect(noProject).toMatchObject({ code: 2, stdout: '' });
    expect(noProject.stderr).toMatch(/^terrapin: required option '-p, --project <name>' not specified\n$/);

    const port = await freePort();
    const connect = operatorCli.connect;
    operatorCli.connect = () => real.connect({ TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    try {
      const down = await cli('plan', '-p', 'app', '-r', 'acme/cli-bad');
      expect(down.code).toBe(4);
      expect(down.stderr).toMatch(new RegExp(`^terrapin: cannot reach Temporal at 127\\.0\\.0\\.1:${port}: [^\\n]+\\n$`));
    } finally {
      operatorCli.connect = connect;
    }
    // No GitHub App credentials: said in one line before anything else.
    const lookup = operatorCli.resolveRepo;
    operatorCli.resolveRepo = (fullName) => real.resolveRepo(fullName, {});
    try {
      expect(await cli('drift', '-p', 'app', '-r', 'acme/cli-bad')).toEqual({ code: 4, stdout: '', stderr: 'terrapin: GitHub App credentials are missing: set APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH), as for the server\n' });
    } finally {
      operatorCli.resolveRepo = lookup;
    }
  });
});
