// A PR checked out as merging it would make it: its head merged into its base's head, on real git
// repositories. The merge is reproducible (same commits, same merge commit), a conflict names its files
// and checks nothing out, and a base far ahead of the PR's fork point is merged all the same.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkout, MERGE_DEPTHS, type GitDeps } from '../../activities/git.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';

let dataDir: string;
let fixture: FixtureRepo;
let repo: RepoRef;
const deps = (dir = dataDir): GitDeps => ({
  dataDir: dir,
  getInstallationToken: async () => {
    throw new Error('no token needed for file:// URLs');
  },
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'terrapin-data-'));
  fixture = await createFixtureRepo({ 'a.tf': '# a1\n', 'b.tf': '# b1\n' });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  await fixture.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

const parents = async (workDir: string) => (await execa('git', ['rev-list', '--parents', '-n', '1', 'HEAD'], { cwd: workDir })).stdout.split(' ').slice(1);

describe('checkout merged into the base', () => {
  it('has the base\'s changes made since the PR branched and the PR\'s own, in the work dir <head>+<base>', async () => {
    const head = await fixture.commit({ 'b.tf': '# b2 from the PR\n' }, { branch: 'pr' });
    const base = await fixture.commit({ 'a.tf': '# a2 merged meanwhile\n' });
    const r = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: head, mergeInto: { sha: base } }, deps());
    expect(r.workDir).toBe(join(dataDir, 'work', 'acme', 'infra', 'pr-3', `${head}+${base}`));
    expect(r).toMatchObject({ sha: head, baseSha: base });
    expect(await readFile(join(r.workDir, 'a.tf'), 'utf8')).toBe('# a2 merged meanwhile\n');
    expect(await readFile(join(r.workDir, 'b.tf'), 'utf8')).toBe('# b2 from the PR\n');
    expect(await parents(r.workDir)).toEqual([base, head]);
    expect((await execa('git', ['rev-parse', 'HEAD'], { cwd: r.workDir })).stdout).toBe(r.mergeSha);
  });

  it('makes the same merge commit on any worker, and reuses a complete work dir', async () => {
    const head = await fixture.commit({ 'b.tf': '# b2\n' }, { branch: 'pr' });
    const base = await fixture.commit({ 'a.tf': '# a2\n' });
    const other = await mkdtemp(join(tmpdir(), 'terrapin-data-'));
    try {
      const one = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: head, mergeInto: { sha: base } }, deps());
      const two = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: head, mergeInto: { sha: base } }, deps(other));
      expect(two.mergeSha).toBe(one.mergeSha);
      // Again in the same data dir: the work dir as it is, with the same answer.
      expect(await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: head, mergeInto: { sha: base } }, deps())).toEqual(one);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('resolves a base branch to its head once, and says which commit it merged into', async () => {
    const head = await fixture.commit({ 'b.tf': '# b2\n' }, { branch: 'pr' });
    const base = await fixture.commit({ 'a.tf': '# a2\n' });
    const r = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: head, mergeInto: { branch: 'main' } }, deps());
    expect(r.baseSha).toBe(base);
    expect(await readFile(join(r.workDir, 'a.tf'), 'utf8')).toBe('# a2\n');
  });

  it('a conflict checks nothing out and names the conflicting files', async () => {
    const head = await fixture.commit({ 'a.tf': '# a from the PR\n', 'c.tf': '# new\n' }, { branch: 'pr' });
    const base = await fixture.commit({ 'a.tf': '# a from main\n' });
    const r = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: head, mergeInto: { sha: base } }, deps());
    expect(r).toEqual({ workDir: '', sha: head, baseSha: base, conflicts: ['a.tf'] });
  });

  it(`finds where the PR branched off though the base moved more than ${MERGE_DEPTHS[0]} commits since`, async () => {
    const head = await fixture.commit({ 'b.tf': '# b2\n' }, { branch: 'pr' });
    for (let i = 0; i < MERGE_DEPTHS[0] + 5; i++) await fixture.commit({ 'a.tf': `# a${i}\n` });
    const base = await fixture.head();
    const r = await checkout({ repo, prNumber: 3, cloneUrl: fixture.cloneUrl, sha: head, mergeInto: { sha: base } }, deps());
    expect(await readFile(join(r.workDir, 'a.tf'), 'utf8')).toBe(`# a${MERGE_DEPTHS[0] + 4}\n`);
    expect(await readFile(join(r.workDir, 'b.tf'), 'utf8')).toBe('# b2\n');
  });
});
