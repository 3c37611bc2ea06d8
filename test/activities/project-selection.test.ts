// Which projects a PR plans, through the real selectProjects activity on real git repositories.
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import * as checkoutFiles from '../../activities/checkout-files.ts';
import { selectProjects } from '../../activities/select-projects.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';
import type { RepoRef } from '../../shared/contracts.ts';

// Every read of a checkout file, counted (the reads themselves are the real ones).
const reads = vi.hoisted(() => [] as string[]);
vi.mock('../../activities/checkout-files.ts', async (original) => {
  const real = await original<typeof checkoutFiles>();
  return { ...real, readCheckoutFile: (root: string, rel: string, opts?: checkoutFiles.CheckoutFileOptions) => (reads.push(rel), real.readCheckoutFile(root, rel, opts)) };
});

let dataDir: string;
const repos: FixtureRepo[] = [];
const repo: RepoRef = { owner: 'acme', name: 'mono', installationId: 1, cloneUrl: '' };
const deps = () => ({ dataDir, getInstallationToken: async () => 'unused' });
const names = (projects?: Array<{ name: string; dir: string }>) => projects?.map((p) => `${p.name}@${p.dir}`);

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'terrapin-select-'));
});
afterAll(async () => {
  for (const r of repos) await r.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

const MONOREPO = {
  'modules/net/main.tf': 'variable "cidr" {}\n',
  'network/main.tf': 'module "net" {\n  source = "../modules/net"\n  cidr   = "10.0.0.0/16"\n}\n',
  'database/main.tf': 'module "net" {\n  source = "../modules/net"\n  cidr   = "10.1.0.0/16"\n}\n',
  'app/main.tf': 'resource "terraform_data" "app" {}\n',
  'README.md': '# infra\n',
};

async function monorepo(files: Record<string, string> = {}) {
  const r = await createFixtureRepo({ ...MONOREPO, ...files });
  repos.push(r);
  return r;
}

describe('project selection', () => {
  test('without a project list: the roots that use a changed local module; every root for /plan -p', async () => {
    const r = await monorepo();
    const baseSha = await r.head();
    const sha = await r.commit({ 'modules/net/main.tf': 'variable "cidr" {}\nvariable "name" { default = "x" }\n' }, { branch: 'pr1' });
    const result = await selectProjects({ repo: { ...repo, cloneUrl: r.cloneUrl }, prNumber: 1, cloneUrl: r.cloneUrl, sha, baseSha }, deps());
    expect(result.changedFiles).toEqual(['modules/net/main.tf']);
    expect(names(result.projects)).toEqual(['database@database', 'network@network']);
    expect(names(result.allProjects)).toEqual(['app@app', 'database@database', 'network@network']);
    expect(result.parallelism).toBeGreaterThanOrEqual(1);
  });

  test('a README-only change plans nothing', async () => {
    const r = await monorepo();
    const baseSha = await r.head();
    const sha = await r.commit({ 'README.md': '# infra, documented\n' }, { branch: 'docs' });
    const result = await selectProjects({ repo: { ...repo, cloneUrl: r.cloneUrl }, prNumber: 2, cloneUrl: r.cloneUrl, sha, baseSha }, deps());
    expect(result.projects).toEqual([]);
  });

  test('with a project list: autoplan globs decide, `when` rules are applied for the PR', async () => {
    const config = [
      'parallelism: 3',
      'projects:',
      '  - name: network',
      '    dir: network',
      '    autoplan: { whenModified: ["*.tf", "../modules/**/*.tf"] }',
      '  - name: app',
      '    dir: app',
      '    dependsOn: [network]',
      '    when:',
      '      - label: prod',
      '        applyRequirements: [{ approved: { count: 2 } }]',
    ].join('\n');
    const r = await monorepo({ '.terrapin.yml': config });
    const baseSha = await r.head();
    const sha = await r.commit({ 'app/main.tf': 'resource "terraform_data" "app" { input = 1 }\n' }, { branch: 'pr3' });
    const result = await selectProjects({ repo: { ...repo, cloneUrl: r.cloneUrl }, prNumber: 3, cloneUrl: r.cloneUrl, sha, baseSha, pr: { baseBranch: 'main', labels: ['prod'] } }, deps());
    expect(names(result.projects)).toEqual(['app@app']);
    expect(result.projects![0]).toMatchObject({ dependsOn: ['network'], applyRequirements: [{ kind: 'approved', count: 2 }] });
    expect(names(result.allProjects)).toEqual(['network@network', 'app@app']);
    expect(result.parallelism).toBe(3);
  });

  test('a base that cannot be fetched makes every project affected (plan too much, never too little)', async () => {
    const r = await monorepo();
    const sha = await r.commit({ 'app/main.tf': 'resource "terraform_data" "app" { input = 2 }\n' }, { branch: 'pr4' });
    const result = await selectProjects({ repo: { ...repo, cloneUrl: r.cloneUrl }, prNumber: 4, cloneUrl: r.cloneUrl, sha, baseSha: 'f'.repeat(40) }, deps());
    expect(result.changedFiles).toBeUndefined();
    expect(names(result.projects)).toEqual(['app@app', 'database@database', 'network@network']);
  });

  test('detection reads each Terraform source once, and never what is under .terraform/', async () => {
    const r = await monorepo({ 'app/.terraform/modules/x/main.tf': 'module "y" {}\n' });
    const baseSha = await r.head();
    const sha = await r.commit({ 'modules/net/main.tf': 'variable "cidr" {}\n# changed\n' }, { branch: 'pr6' });
    reads.length = 0;
    const result = await selectProjects({ repo: { ...repo, cloneUrl: r.cloneUrl }, prNumber: 6, cloneUrl: r.cloneUrl, sha, baseSha }, deps());
    expect(names(result.projects)).toEqual(['database@database', 'network@network']);
    expect(reads.sort()).toEqual(['app/main.tf', 'database/main.tf', 'modules/net/main.tf', 'network/main.tf']);
  });

  test('a Terraform source that is a symbolic link out of the checkout is refused by name, its target unread', async () => {
    const r = await monorepo();
    const baseSha = await r.head();
    const secret = join(dataDir, 'secret.tf');
    await writeFile(secret, 'SECRET-KEY-MATERIAL\n');
    const ID = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' };
    const git = (...args: string[]) => execa('git', args, { cwd: r.dir, env: ID });
    await git('checkout', '-q', '-b', 'pr7');
    await symlink(secret, join(r.dir, 'network', 'zz.tf'));
    await git('add', '-A');
    await git('commit', '-q', '-m', 'link');
    const sha = (await git('rev-parse', 'HEAD')).stdout.trim();
    await git('checkout', '-q', 'main');
    const err = await selectProjects({ repo: { ...repo, cloneUrl: r.cloneUrl }, prNumber: 7, cloneUrl: r.cloneUrl, sha, baseSha }, deps()).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ type: 'CheckoutFileRefused', message: expect.stringContaining('network/zz.tf is a symbolic link to a path outside the repository') });
    expect(JSON.stringify(err)).not.toContain('SECRET');
  });

  test('a repository with its root at the top is one project, named default', async () => {
    const r = await createFixtureRepo({ 'main.tf': 'resource "terraform_data" "a" {}\n' });
    repos.push(r);
    const baseSha = await r.head();
    const sha = await r.commit({ 'main.tf': 'resource "terraform_data" "a" {}\nresource "terraform_data" "b" {}\n' }, { branch: 'pr5' });
    const result = await selectProjects({ repo: { ...repo, cloneUrl: r.cloneUrl }, prNumber: 5, cloneUrl: r.cloneUrl, sha, baseSha }, deps());
    expect(names(result.projects)).toEqual(['default@.']);
  });
});
