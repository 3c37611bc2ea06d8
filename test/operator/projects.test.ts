// operator/projects.ts: a repository's projects at its default branch, read by the real worker (a short
// workflow on the task queue) from a real git repository; GitHub's answers about the repository are nock.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorRepoActivities } from '../../activities/operator-repos.ts';
import { createGithubClients } from '../../activities/github-client.ts';
import { NotFoundError, UnavailableError } from '../../operator/errors.ts';
import { listProjects, projectGraph } from '../../operator/projects.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

let h: Harness;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
}, 120_000);

afterAll(async () => {
  for (const r of repos) await r.cleanup();
  await h?.teardown();
});

async function fixture(files: Record<string, string>): Promise<FixtureRepo> {
  const r = await createFixtureRepo(files);
  repos.push(r);
  return r;
}

/** GitHub's two answers about owner/name (installation 77, the clone URL), each expected exactly once. */
const repositoryOnGithub = (owner: string, name: string, cloneUrl: string): GithubMock => new GithubMock(owner, name).repository(cloneUrl, 77);

const deps = () => ({ client: h.env.client, taskQueue: h.taskQueue });

describe('listProjects', () => {
  it('without a project list: the Terraform roots of the default branch, with the defaults', async () => {
    const r = await fixture({ 'net/main.tf': 'module "m" {\n  source = "../modules/m"\n}\n', 'modules/m/main.tf': '', 'web/main.tf': '' });
    const github = repositoryOnGithub('acme', 'detected', r.cloneUrl);
    const graph = await listProjects(deps(), 'acme/detected');
    expect(graph).toEqual({
      repository: 'acme/detected',
      defaultBranch: 'main',
      sha: await r.head(),
      projects: [
        { name: 'net', dir: 'net', workspace: 'default', terraform: 'terraform', apply: 'beforeMerge', dependsOn: [], dependents: [] },
        { name: 'web', dir: 'web', workspace: 'default', terraform: 'terraform', apply: 'beforeMerge', dependsOn: [], dependents: [] },
      ],
      edges: [],
    });
    github.assertNoUnexpected();
  });

  it('reads the default branch, not another branch', async () => {
    const r = await fixture({ '.terrapin.yml': 'projects:\n  - name: one\n    dir: one\n', 'one/main.tf': '' });
    await r.commit({ '.terrapin.yml': 'projects:\n  - name: two\n    dir: one\n' }, { branch: 'feature' });
    const github = repositoryOnGithub('acme', 'branches', r.cloneUrl);
    const graph = await listProjects(deps(), 'acme/branches');
    expect(graph.projects.map((p) => p.name)).toEqual(['one']);
    expect(graph.sha).toBe(await r.head('main'));
    github.assertNoUnexpected();
  });

  it('a broken .terrapin.yml: every problem, with line and column, and no projects', async () => {
    const r = await fixture({ '.terrapin.yml': 'projects:\n  - name: a\n    dir: a\n    dependsOn: [b]\n' });
    const github = repositoryOnGithub('acme', 'broken', r.cloneUrl);
    const graph = await listProjects(deps(), 'acme/broken');
    expect(graph.projects).toEqual([]);
    expect(graph.configErrors).toEqual(['.terrapin.yml:4:17: projects[0].dependsOn[0]: unknown project "b"; did you mean "a"?']);
    github.assertNoUnexpected();
  });

  it('an unknown repository, or one the App is not installed on: one line saying so', async () => {
    new GithubMock('acme', 'gone');
    const github = nock('https://api.github.com').get('/repos/acme/gone/installation').reply(404, { message: 'Not Found' });
    const refused = listProjects(deps(), 'acme/gone');
    await expect(refused).rejects.toThrow(/^acme\/gone: no such repository, or the GitHub App is not installed on it$/);
    await expect(refused).rejects.toBeInstanceOf(NotFoundError);
    expect(github.isDone()).toBe(true);
  });

  it('no worker polling the task queue: says so at once instead of waiting', async () => {
    const queue = `nobody-${randomUUID()}`;
    const refused = listProjects({ client: h.env.client, taskQueue: queue }, 'acme/infra');
    await expect(refused).rejects.toThrow(`No Terrapin worker is polling task queue "${queue}": start one (npm start, or npm run worker)`);
    await expect(refused).rejects.toBeInstanceOf(UnavailableError);
  });
});

describe('resolveRepository (the worker turns owner/name into a repository reference)', () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const settings = { appId: '1', privateKey, webhookSecret: 's', baseUrl: 'https://api.github.com' };
  const activities = (repoAllowlist: string[] = []) => createOperatorRepoActivities({ settings, github: createGithubClients(settings), repoAllowlist });

  it("takes GitHub's spelling of the names, whatever the operator typed", async () => {
    const github = repositoryOnGithub('Acme', 'Infra', 'https://github.com/Acme/Infra.git');
    expect(await activities().resolveRepository({ repository: 'Acme/Infra' })).toEqual({ owner: 'Acme', name: 'Infra', installationId: 77, cloneUrl: 'https://github.com/Acme/Infra.git' });
    github.assertNoUnexpected();
  });

  it('refuses a repository outside TERRAPIN_REPO_ALLOWLIST and a malformed name without asking GitHub', async () => {
    await expect(activities(['acme/*']).resolveRepository({ repository: 'evil/infra' })).rejects.toMatchObject({ message: 'evil/infra is not in TERRAPIN_REPO_ALLOWLIST', nonRetryable: true });
    await expect(activities().resolveRepository({ repository: 'acme/infra/extra' })).rejects.toMatchObject({ message: '"acme/infra/extra" is not a repository name; expected owner/name', nonRetryable: true });
  });
});

describe('projectGraph', () => {
  it('orders projects after their upstreams and names each edge’s outputs', () => {
    const base = { workspace: 'default', terraform: 'terraform' as const, apply: 'beforeMerge' as const, inputs: {} };
    const graph = projectGraph({
      repository: 'acme/infra',
      repo: { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: 'https://github.com/acme/infra.git' },
      sha: 'a'.repeat(40),
      projects: [
        { ...base, name: 'app', dir: 'app', dependsOn: ['db', 'net'], inputs: { db_url: { project: 'db', output: 'url' } } },
        { ...base, name: 'db', dir: 'db', dependsOn: ['net'], inputs: { vpc: { project: 'net', output: 'vpc_id' } } },
        { ...base, name: 'net', dir: 'net', dependsOn: [] },
      ],
    });
    expect(graph.projects.map((p) => [p.name, p.dependents])).toEqual([['net', ['db', 'app']], ['db', ['app']], ['app', []]]);
    expect(graph.edges).toEqual([
      { from: 'net', to: 'db', outputs: [{ output: 'vpc_id', variable: 'vpc' }] },
      { from: 'db', to: 'app', outputs: [{ output: 'url', variable: 'db_url' }] },
      { from: 'net', to: 'app', outputs: [] },
    ]);
  });
});
