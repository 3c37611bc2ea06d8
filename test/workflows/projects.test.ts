// Several projects in one PR, end to end: network → database → app wired by `inputs`, on a real Temporal
// server with real terraform and git; GitHub mocked at HTTP with every call asserted.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_APPLY, CHECK_PLAN } from '../../shared/contracts.ts';
import { FAIL_ON_APPLY_MESSAGE, createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { issueCommentEvent, pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';
import { temporalCliPath } from '../helpers/temporal-cli.ts';
import { writeFile } from 'node:fs/promises';

const PROJECTS = ['network', 'database', 'app'] as const;
type Name = (typeof PROJECTS)[number];

let h: Harness;
let tmp: string;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-projects-'));
  // The fixtures' local state files live here, outside every checkout: the sandbox must see them.
  h.allowRunnerPath(tmp);
});
afterAll(async () => {
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const CONFIG = `projects:
  - name: network
    dir: network
  - name: database
    dir: database
    inputs:
      vpc_id: network.outputs.vpc_id
  - name: app
    dir: app
    inputs:
      endpoint: database.outputs.endpoint
`;

interface Versions {
  vpc?: string;
  subnet?: boolean;
  backup?: boolean;
  backupFails?: boolean;
  cache?: boolean;
}

function files(states: string, v: Versions = {}): Record<string, string> {
  const backend = (name: Name) => `terraform {\n  backend "local" {\n    path = "${join(states, `${name}.tfstate`)}"\n  }\n}\n`;
  const fail = `  provisioner "local-exec" {\n    command = "echo '${FAIL_ON_APPLY_MESSAGE}' >&2; exit 1"\n  }\n`;
  return {
    '.terrapin.yml': CONFIG,
    'network/main.tf':
      backend('network') +
      `resource "terraform_data" "vpc" {\n  input = "${v.vpc ?? 'vpc-1'}"\n}\n` +
      (v.subnet ? `resource "terraform_data" "subnet" {\n  input = "subnet-a"\n}\n` : '') +
      `output "vpc_id" {\n  value = terraform_data.vpc.output\n}\n`,
    'database/main.tf':
      backend('database') +
      `variable "vpc_id" {}\nresource "terraform_data" "db" {\n  input = "\${var.vpc_id}/db"\n}\n` +
      (v.backup ? `resource "terraform_data" "backup" {\n  input = "nightly"\n${v.backupFails ? fail : ''}}\n` : '') +
      `output "endpoint" {\n  value = "db.\${var.vpc_id}"\n}\n`,
    'app/main.tf':
      backend('app') +
      `variable "endpoint" {}\nresource "terraform_data" "app" {\n  input = var.endpoint\n}\n` +
      (v.cache ? `resource "terraform_data" "cache" {\n  input = "redis"\n}\n` : ''),
  };
}

/** Applies main in dependency order by hand, as if deployed before the test. */
async function deployBase(repo: FixtureRepo, states: string): Promise<void> {
  const dir = await mkdtemp(join(tmp, 'base-'));
  await execa('git', ['clone', '-q', repo.cloneUrl, dir]);
  const vars: Record<Name, Record<string, string>> = { network: {}, database: { TF_VAR_vpc_id: 'vpc-1' }, app: { TF_VAR_endpoint: 'db.vpc-1' } };
  for (const name of PROJECTS) {
    const tf = (...args: string[]) => execa('terraform', args, { cwd: join(dir, name), env: { TF_IN_AUTOMATION: '1', ...vars[name] } });
    await tf('init', '-input=false', '-no-color');
    await tf('apply', '-auto-approve', '-input=false', '-no-color');
  }
  expect(await resources(states)).toEqual({ network: { vpc: 'vpc-1' }, database: { db: 'vpc-1/db' }, app: { app: 'db.vpc-1' } });
}

async function resources(states: string): Promise<Record<Name, Record<string, unknown>>> {
  const out = {} as Record<Name, Record<string, unknown>>;
  for (const name of PROJECTS) {
    const state = JSON.parse(await readFile(join(states, `${name}.tfstate`), 'utf8'));
    out[name] = Object.fromEntries(state.resources.map((r: any) => [r.name, r.instances[0]?.attributes?.input?.value ?? null]));
  }
  return out;
}

async function scenario(repoName: string, number: number, head: Versions) {
  const states = await mkdtemp(join(tmp, `${repoName}-states-`));
  const repo = await createFixtureRepo(files(states));
  repos.push(repo);
  await deployBase(repo, states);
  const headSha = await repo.commit(files(states, head), { branch: 'change' });
  const pr: TestPr = { owner: 'acme', repo: repoName, number, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'change', baseRef: 'main', baseSha: await repo.head(), author: 'alice' };
  return { pr, repo, states, gh: new GithubMock('acme', repoName) };
}

/** The calls of a plan run over the given projects: aggregate and per-project checks, one comment. */
function expectPlans(gh: GithubMock, number: number, names: readonly Name[], comment: (body: string) => boolean, aggregate: string | RegExp) {
  gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
  for (const name of names) gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress', { title: /^Planning / });
  gh.comment(number, comment);
  for (const name of names) gh.updateCheckRun(`${CHECK_PLAN}: ${name}`, 'completed', { conclusion: 'success' });
  gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: aggregate });
  gh.createCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
}

/** `RECORD_HISTORIES=<repo>` records that scenario for test/workflows/replay.test.ts (see pr.test.ts). */
async function recordHistory(repo: string, number: number): Promise<void> {
  if (!(process.env.RECORD_HISTORIES ?? '').split(',').includes(repo)) return;
  const { stdout } = await execa(temporalCliPath()!, ['workflow', 'show', '--address', h.env.address, '--workflow-id', `pr:acme/${repo}#${number}`, '--output', 'json']);
  await writeFile(new URL(`../fixtures/histories/${repo}.json`, import.meta.url), stdout);
}

const approve = (pr: TestPr, login: string, commentId: number, body = '/approve') =>
  h.receive('issue_comment', issueCommentEvent(pr, body, { login, commentId }));

describe('several projects in one PR', () => {
  test('each project gets its checks and a row in one comment; an approval applies them in dependency order with outputs passed on', async () => {
    const s = await scenario('mono', 1, { subnet: true, backup: true, cache: true });
    expectPlans(
      s.gh,
      1,
      PROJECTS,
      (b) => b.includes('| Project | Dir | Workspace | Result |') && PROJECTS.every((n) => b.includes(`| \`${n}\` | \`${n}\` | \`default\` | planned |`)),
      'Plan: 3 to add, 0 to change, 0 to destroy.',
    );
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();
    const planned = await h.waitFor('acme', 'mono', 1, (st) => st.plan?.status === 'ready');
    expect(planned.plan?.projects?.map((p) => [p.name, p.status])).toEqual([
      ['network', 'planned'],
      ['database', 'planned'],
      ['app', 'planned'],
    ]);

    s.gh.reaction(101).permission('bob', 'write').prCommits(1).updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / });
    for (const name of PROJECTS) s.gh.createCheckRun(`${CHECK_APPLY}: ${name}`, 'in_progress', { title: /^Applying / });
    s.gh.comment(1, (b) => PROJECTS.every((n) => b.includes(`| \`${n}\` | applied |`)));
    for (const name of PROJECTS) s.gh.updateCheckRun(`${CHECK_APPLY}: ${name}`, 'completed', { conclusion: 'success', title: 'Applied' });
    s.gh.updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Applied' });
    await approve(s.pr, 'bob', 101);
    await s.gh.settled();

    expect(await resources(s.states)).toEqual({
      network: { vpc: 'vpc-1', subnet: 'subnet-a' },
      database: { db: 'vpc-1/db', backup: 'nightly' },
      app: { app: 'db.vpc-1', cache: 'redis' },
    });
    expect((await h.status('acme', 'mono', 1)).plan?.status).toBe('applied');
    s.gh.assertNoUnexpected();
    await recordHistory('mono', 1);
  });

  test('saga across projects: the middle one fails, the run is compensated newest first, state files back to main', async () => {
    const s = await scenario('saga', 2, { subnet: true, backup: true, backupFails: true, cache: true });
    expectPlans(s.gh, 2, PROJECTS, (b) => b.includes('| Project | Dir | Workspace | Result |'), 'Plan: 3 to add, 0 to change, 0 to destroy.');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();

    s.gh.reaction(201).permission('bob', 'write').prCommits(2).updateCheckRun(CHECK_APPLY, 'in_progress', { title: /^Applying / });
    for (const name of PROJECTS) s.gh.createCheckRun(`${CHECK_APPLY}: ${name}`, 'in_progress', { title: /^Applying / });
    s.gh.comment(
      2,
      (b) =>
        b.includes('| `network` | applied, then rolled back |') &&
        b.includes('| `database` | **failed — rolled back** |') &&
        b.includes('| `app` | skipped: an upstream project failed |') &&
        b.includes(FAIL_ON_APPLY_MESSAGE),
    );
    s.gh
      .updateCheckRun(`${CHECK_APPLY}: network`, 'completed', { conclusion: 'neutral', title: 'Rolled back' })
      .updateCheckRun(`${CHECK_APPLY}: database`, 'completed', { conclusion: 'failure', title: 'Rolled back' })
      .updateCheckRun(`${CHECK_APPLY}: app`, 'completed', { conclusion: 'skipped', title: 'Skipped' })
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'failure', title: 'Apply failed' });
    await approve(s.pr, 'bob', 201);
    await s.gh.settled();

    expect(await resources(s.states)).toEqual({ network: { vpc: 'vpc-1' }, database: { db: 'vpc-1/db' }, app: { app: 'db.vpc-1' } });
    expect((await h.status('acme', 'saga', 2)).plan?.status).toBe('apply-failed');
    s.gh.assertNoUnexpected();
    await recordHistory('saga', 2);
  });

  test('a downstream whose plan changes once its upstream applied stops and asks for approval again; a later run re-plans stale downstreams', async () => {
    const s = await scenario('changed', 3, { vpc: 'vpc-2', backup: true, cache: true });
    s.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
    for (const name of PROJECTS) s.gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress');
    s.gh.comment(3, (b) => b.includes('| Project |'));
    for (const name of PROJECTS) s.gh.updateCheckRun(`${CHECK_PLAN}: ${name}`, 'completed', { conclusion: 'success' });
    s.gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: 'Plan: 2 to add, 1 to change, 0 to destroy.' }).createCheckRun(CHECK_APPLY, 'queued');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();

    // network applies (its vpc_id output changes); database's fresh plan now also updates db: it stops.
    s.gh.reaction(301).permission('bob', 'write').prCommits(3).updateCheckRun(CHECK_APPLY, 'in_progress');
    for (const name of PROJECTS) s.gh.createCheckRun(`${CHECK_APPLY}: ${name}`, 'in_progress');
    s.gh
      .comment(3, (b) => b.includes('| `network` | applied |') && b.includes('| `database` | not applied |') && b.includes('| `app` | skipped'))
      .updateCheckRun(`${CHECK_APPLY}: network`, 'completed', { conclusion: 'success', title: 'Applied' })
      .updateCheckRun(`${CHECK_APPLY}: database`, 'completed', { conclusion: 'neutral', title: 'Needs approval again' })
      .updateCheckRun(`${CHECK_APPLY}: app`, 'completed', { conclusion: 'skipped', title: 'Skipped' })
      .updateCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' })
      .comment(3, (b) => b.includes('**`database` was not applied.**') && b.includes('terraform_data.db') && b.includes('vpc-2/db'));
    await approve(s.pr, 'bob', 301);
    await s.gh.settled();
    expect(await resources(s.states)).toEqual({ network: { vpc: 'vpc-2' }, database: { db: 'vpc-1/db' }, app: { app: 'db.vpc-1' } });

    // Approving database's new plan applies it; app's approval still stands but its plan is stale now.
    s.gh.reaction(302).permission('bob', 'write').prCommits(3).updateCheckRun(CHECK_APPLY, 'in_progress');
    s.gh.createCheckRun(`${CHECK_APPLY}: database`, 'in_progress');
    s.gh
      .comment(3, (b) => b.includes('| `database` | applied |'))
      .updateCheckRun(`${CHECK_APPLY}: database`, 'completed', { conclusion: 'success', title: 'Applied' })
      .updateCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' });
    await approve(s.pr, 'bob', 302, '/approve -p database');
    await s.gh.settled();

    // app was planned against db.vpc-1; its upstream changed since, so it is planned again before it applies.
    s.gh.reaction(303).permission('bob', 'write').updateCheckRun(CHECK_APPLY, 'in_progress');
    s.gh.createCheckRun(`${CHECK_APPLY}: app`, 'in_progress');
    s.gh
      .comment(3, (b) => b.includes('| `app` | not applied |'))
      .updateCheckRun(`${CHECK_APPLY}: app`, 'completed', { conclusion: 'neutral', title: 'Needs approval again' })
      .updateCheckRun(CHECK_APPLY, 'queued', { title: 'Waiting for approval' })
      .comment(3, (b) => b.includes('**`app` was not applied.**') && b.includes('db.vpc-2'));
    await approve(s.pr, 'bob', 303, '/apply -p app');
    await s.gh.settled();
    expect((await resources(s.states)).app).toEqual({ app: 'db.vpc-1' });
    s.gh.assertNoUnexpected();
  });

  test('/plan -p plans the named project only; an unknown name gets the list of projects', async () => {
    const s = await scenario('target', 4, { subnet: true, cache: true });
    // Only network and app changed: database is not planned.
    s.gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / });
    for (const name of ['network', 'app']) s.gh.createCheckRun(`${CHECK_PLAN}: ${name}`, 'in_progress');
    s.gh.comment(4, (b) => b.includes('| `network` |') && b.includes('| `app` |') && !b.includes('| `database` |'));
    for (const name of ['network', 'app']) s.gh.updateCheckRun(`${CHECK_PLAN}: ${name}`, 'completed', { conclusion: 'success' });
    s.gh.updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: 'Plan: 2 to add, 0 to change, 0 to destroy.' }).createCheckRun(CHECK_APPLY, 'queued');
    await h.receive('pull_request', pullRequestEvent('opened', s.pr));
    await s.gh.settled();

    s.gh
      .reaction(401)
      .permission('bob', 'write')
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(4, (b) => b.includes('**Terrapin plan** for') && b.includes('project `database`') && b.includes('No changes.'))
      .updateCheckRun(CHECK_APPLY, 'completed', { conclusion: 'cancelled', title: 'Superseded by newer commits' })
      .minimize()
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'success', title: 'No changes.' })
      .createCheckRun(CHECK_APPLY, 'completed', { conclusion: 'success', title: 'Nothing to apply' });
    await approve(s.pr, 'bob', 401, '/plan -p database');
    await s.gh.settled();
    const targeted = await h.waitFor('acme', 'target', 4, (st) => st.plan?.projects?.length === 1);
    expect(targeted.plan?.projects?.map((p) => p.name)).toEqual(['database']);

    s.gh
      .reaction(402)
      .permission('bob', 'write')
      .createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(4, (b) => b.includes('There is no project `netwrk`') && b.includes('`network`, `database`, `app`'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Nothing planned' });
    await approve(s.pr, 'bob', 402, '/plan -p netwrk');
    await s.gh.settled();
    s.gh.assertNoUnexpected();
  });
});
