import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { branchHead, checkout, removeWorkDirs, revisionFacts, type GitDeps } from '../../activities/git.ts';
import { selectProjects } from '../../activities/select-projects.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';

let dataDir: string;
let fixture: FixtureRepo;
let repo: RepoRef;
const deps = (): GitDeps => ({
  dataDir,
  getInstallationToken: async () => {
    throw new Error('no token needed for file:// URLs');
  },
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'terrapin-data-'));
  fixture = await createFixtureRepo({ 'main.tf': '# v1\n' });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  await fixture.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

describe('checkout', () => {
  it('checks out an exact sha into <data>/work/<owner>/<repo>/pr-<n>/<sha>', async () => {
    const first = await fixture.head();
    await fixture.commit({ 'main.tf': '# v2\n' });
    const r = await checkout({ repo, prNumber: 7, cloneUrl: fixture.cloneUrl, sha: first }, deps());
    expect(r.workDir).toBe(join(dataDir, 'work', 'acme', 'infra', 'pr-7', first));
    expect(r.sha).toBe(first);
    expect(await readFile(join(r.workDir, 'main.tf'), 'utf8')).toBe('# v1\n');
    // The work dir and nothing more: no `.terrapin.yml`, no projects.
    expect(r).toEqual({ workDir: join(dataDir, 'work', 'acme', 'infra', 'pr-7', first), sha: first });
  });

  it('checks out a branch at its head and uses that sha for the dir', async () => {
    const head = await fixture.commit({ 'main.tf': '# feature\n' }, { branch: 'feature' });
    const r = await checkout({ repo, prNumber: 7, cloneUrl: fixture.cloneUrl, branch: 'feature' }, deps());
    expect(r.sha).toBe(head);
    expect(r.workDir.endsWith(`/pr-7/${head}`)).toBe(true);
    expect(await readFile(join(r.workDir, 'main.tf'), 'utf8')).toBe('# feature\n');
  });

  it('fails without retry for an unknown branch or commit', async () => {
    const missingBranch = checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, branch: 'nope' }, deps());
    await expect(missingBranch).rejects.toMatchObject({ type: 'BranchNotFound', nonRetryable: true });
    const missingSha = checkout({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: 'a'.repeat(40) }, deps());
    await expect(missingSha).rejects.toMatchObject({ type: 'CommitNotFound', nonRetryable: true });
  });

  it('rejects path-like owner names', async () => {
    const bad = { ...repo, owner: '..' };
    await expect(checkout({ repo: bad, prNumber: 1, cloneUrl: fixture.cloneUrl, sha: await fixture.head() }, deps())).rejects.toBeInstanceOf(
      ApplicationFailure,
    );
  });

  it('reuses a complete work dir and replaces a partial one', async () => {
    const sha = await fixture.head();
    const input = { repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha };
    const r1 = await checkout(input, deps());
    await writeFile(join(r1.workDir, 'kept.txt'), 'still here');
    await checkout(input, deps());
    expect(await readFile(join(r1.workDir, 'kept.txt'), 'utf8')).toBe('still here');

    // Simulate an attempt that died mid-clone: no completion marker.
    await rm(join(r1.workDir, '.git', 'terrapin-checkout-complete'));
    await writeFile(join(r1.workDir, 'junk.txt'), 'left over');
    const r3 = await checkout(input, deps());
    await expect(stat(join(r3.workDir, 'junk.txt'))).rejects.toThrow();
    expect(await readFile(join(r3.workDir, 'main.tf'), 'utf8')).toBe('# v1\n');
  });

  it('finds an existing work dir without the network: neither the clone URL nor a token is needed', async () => {
    const sha = await fixture.head();
    const first = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha }, deps());
    await fixture.cleanup();
    const again = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha }, deps());
    // An http URL nothing listens on, and a token getter that counts its calls.
    let tokens = 0;
    const counting: GitDeps = { dataDir, getInstallationToken: async () => `ghs_${++tokens}` };
    const overHttp = await checkout({ repo, prNumber: 3, cloneUrl: 'http://127.0.0.1:9/acme/infra.git', sha }, counting);
    expect([again, overHttp]).toEqual([first, first]);
    expect(tokens).toBe(0);
  });

  it('sends the installation token only as a Basic auth header over http', async () => {
    const token = 'ghs_tokenfortestsonly0123456789abcdef';
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(403).end('forbidden');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/acme/infra.git`;
    try {
      const httpDeps: GitDeps = { dataDir, getInstallationToken: async (id) => (id === 1 ? token : 'wrong') };
      const err = await checkout({ repo, prNumber: 9, cloneUrl: url, sha: 'b'.repeat(40) }, httpDeps).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(String((err as Error).message)).not.toContain(token);
      expect(seen.length).toBeGreaterThan(0);
      const expected = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
      expect(seen[0]!.authorization).toBe(expected);
      // A failed checkout leaves nothing behind (it was fetched into a staging dir), so no file holds the token.
      expect(await readdir(join(dataDir, 'work', 'acme', 'infra', 'pr-9'))).toEqual([]);
    } finally {
      server.close();
    }
  });
});

describe('checkout of a merge', () => {
  it('runs checking out the same commit at once share one complete work dir', async () => {
    const sha = await fixture.head();
    const results = await Promise.all([1, 2, 3, 4].map(() => checkout({ repo, prNumber: 0, cloneUrl: fixture.cloneUrl, sha }, deps())));
    expect(new Set(results.map((r) => r.workDir)).size).toBe(1);
    expect(await readFile(join(results[0]!.workDir, 'main.tf'), 'utf8')).toBe('# v1\n');
    // No staging dirs are left beside it.
    expect(await readdir(join(dataDir, 'work', 'acme', 'infra', 'default-branch'))).toEqual([sha]);
  });
});

describe('selectProjects', () => {
  it('is checkout and `.terrapin.yml`, in the same work dir', async () => {
    const sha = await fixture.head();
    const plain = await checkout({ repo, prNumber: 7, cloneUrl: fixture.cloneUrl, sha }, deps());
    const r = await selectProjects({ repo, prNumber: 7, cloneUrl: fixture.cloneUrl, sha }, deps());
    expect({ workDir: r.workDir, sha: r.sha }).toEqual(plain);
    expect(r).toMatchObject({ onFailure: 'rollback', policySha: sha, defaultBranch: 'main', allowForks: false });
    expect(r.configErrors).toBeUndefined();
  });

  it('reads onFailure from .terrapin.yml at that commit', async () => {
    const sha = await fixture.commit({ '.terrapin.yml': 'onFailure: none\n' });
    const r = await selectProjects({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha }, deps());
    expect(r.onFailure).toBe('none');
    expect(r.configErrors).toBeUndefined();
  });

  it('returns configErrors with line and column for bad yaml, and defaults', async () => {
    const sha = await fixture.commit({ '.terrapin.yml': '# settings\nonFailure: [rollback\n' });
    const r = await selectProjects({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha }, deps());
    expect(r.onFailure).toBe('rollback');
    expect(r.configErrors).toEqual([expect.stringMatching(/^\.terrapin\.yml:3:1: invalid YAML: /)]);
  });

  it('returns configErrors pointing at a wrong onFailure value', async () => {
    const sha = await fixture.commit({ '.terrapin.yml': 'onFailure: sometimes\n' });
    const r = await selectProjects({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha }, deps());
    expect(r.onFailure).toBe('rollback');
    expect(r.configErrors).toEqual(['.terrapin.yml:1:12: onFailure: must be one of "rollback", "none", got "sometimes"']);
  });

  it("takes the root project's onFailure from a full config", async () => {
    const sha = await fixture.commit({ '.terrapin.yml': 'defaults:\n  onFailure: rollback\nprojects:\n  - name: root\n    dir: .\n    onFailure: none\n' });
    const r = await selectProjects({ repo, prNumber: 1, cloneUrl: fixture.cloneUrl, sha }, deps());
    expect(r).toMatchObject({ onFailure: 'none' });
    expect(r.configErrors).toBeUndefined();
  });

  it('compareWithParent finds what a merge commit changed on its branch', async () => {
    await fixture.commit({ '.terrapin.yml': 'projects:\n  - name: a\n    dir: a\n  - name: b\n    dir: b\n', 'a/main.tf': '# a\n', 'b/main.tf': '# b\n' });
    await fixture.commit({ 'a/main.tf': '# a2\n' }, { branch: 'feature' });
    await fixture.commit({ 'b/main.tf': '# b2\n' }); // main moved on meanwhile
    const merge = await fixture.merge('feature');
    const r = await selectProjects({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: merge, compareWithParent: true }, deps());
    expect(r.changedFiles).toEqual(['a/main.tf']);
    expect(r.projects?.map((p) => p.name)).toEqual(['a']);
  });
});

describe('revisionFacts', () => {
  it('knows a commit\'s first parent and whether it is contained in a newer one', async () => {
    const first = await fixture.head();
    const second = await fixture.commit({ 'main.tf': '# v2\n' });
    const third = await fixture.commit({ 'main.tf': '# v3\n' });
    const sideways = await fixture.commit({ 'main.tf': '# side\n' }, { branch: 'side' });
    const facts = (sha: string, newer?: string) => revisionFacts({ repo, project: 'web', sha, newer }, deps());
    expect(await facts(third)).toEqual({ parentSha: second });
    expect(await facts(first)).toEqual({ parentSha: undefined });
    expect((await facts(second, third)).olderThanNewer).toBe(true);
    expect((await facts(third, third)).olderThanNewer).toBe(true);
    expect((await facts(third, second)).olderThanNewer).toBe(false);
    expect((await facts(sideways, third)).olderThanNewer).toBe(false);
  });
});

describe('branchHead', () => {
  it("answers a branch's head from the remote as it moves, and says so when the branch is gone", async () => {
    const head = (branch: string) => branchHead({ repo, prNumber: 7, cloneUrl: fixture.cloneUrl, branch }, deps());
    expect(await head('main')).toBe(await fixture.head());
    const moved = await fixture.commit({ 'main.tf': '# v2\n' });
    expect(await head('main')).toBe(moved);
    await expect(head('no-such-branch')).rejects.toMatchObject({ type: 'BranchNotFound', nonRetryable: true });
  });
});

describe('removeWorkDirs', () => {
  it('deletes every work dir of the PR and nothing else', async () => {
    const sha = await fixture.head();
    await checkout({ repo, prNumber: 4, cloneUrl: fixture.cloneUrl, sha }, deps());
    await checkout({ repo, prNumber: 5, cloneUrl: fixture.cloneUrl, sha }, deps());
    await removeWorkDirs({ repo, prNumber: 4 }, deps());
    expect(await readdir(join(dataDir, 'work', 'acme', 'infra'))).toEqual(['pr-5']);
    await removeWorkDirs({ repo, prNumber: 4 }, deps()); // idempotent
  });
});
