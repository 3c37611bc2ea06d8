// policyAt and permissionsAt on real git repositories: what `.terrapin.yml` on the default branch (or at a
// commit of it) says, within the operator's rules, read without a clone.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GitDeps } from '../../activities/git.ts';
import type { OperatorPolicy } from '../../activities/operator-policy.ts';
import { permissionsAt, policyAt } from '../../activities/repo-policy.ts';
import { selectProjects } from '../../activities/select-projects.ts';
import type { RepoRef } from '../../shared/contracts.ts';
import { DEFAULT_PERMISSIONS } from '../../workflows/permissions.ts';
import { createFixtureRepo, type FixtureRepo } from '../helpers/fixture-repo.ts';

const CAROL_APPROVES = 'allowForks: true\npermissions:\n  approve: { users: [carol] }\n';
const carol = { ...DEFAULT_PERMISSIONS, approve: { ...DEFAULT_PERMISSIONS.approve, users: ['carol'] } };

let dataDir: string;
let fixture: FixtureRepo;
let repo: RepoRef;
const deps = (operatorPolicy?: OperatorPolicy): GitDeps => ({
  dataDir,
  getInstallationToken: async () => {
    throw new Error('no token needed for file:// URLs');
  },
  ...(operatorPolicy ? { operatorPolicy } : {}),
});
const operator = (rule: Omit<OperatorPolicy['repositories'][number], 'match'>): OperatorPolicy => ({
  repositories: [{ match: ['acme/*'], ...rule }],
  runner: { sandbox: 'auto', paths: [] },
});
const forMain = { baseBranch: 'main', labels: [] };

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'terrapin-policy-'));
  fixture = await createFixtureRepo({ 'main.tf': '', '.terrapin.yml': CAROL_APPROVES });
  repo = { owner: 'acme', name: 'infra', installationId: 1, cloneUrl: fixture.cloneUrl };
});
afterEach(async () => {
  await fixture.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

describe('policyAt', () => {
  it("returns what the default branch's file says, not a PR branch's, without a work dir", async () => {
    await fixture.commit({ '.terrapin.yml': 'permissions:\n  approve: { allowAuthor: true }\n' }, { branch: 'pr' });
    const policy = await policyAt({ repo, prNumber: 4, pr: forMain }, deps(operator({ allowForks: true })));
    expect(policy).toEqual({ sha: await fixture.head(), branch: 'main', permissions: carol, allowForks: true, baseAllowed: true, allowedBaseBranches: ['main'] });
    expect(await readdir(dataDir)).toEqual(['mirrors']);
  });

  it('follows the default branch as it moves', async () => {
    await policyAt({ repo, prNumber: 4, pr: forMain }, deps());
    const head = await fixture.commit({ '.terrapin.yml': 'permissions:\n  approve: { users: [dave] }\n' });
    const policy = await policyAt({ repo, prNumber: 4, pr: forMain }, deps());
    expect({ sha: policy.sha, users: policy.permissions.approve.users }).toEqual({ sha: head, users: ['dave'] });
  });

  it('lets the operator decide forks and base branches', async () => {
    const strict = await policyAt({ repo, prNumber: 4, pr: { baseBranch: 'release/2', labels: [] } }, deps());
    expect(strict).toMatchObject({ allowForks: false, baseAllowed: false, allowedBaseBranches: ['main'] });
    const loose = await policyAt({ repo, prNumber: 4, pr: { baseBranch: 'release/2', labels: [] } }, deps(operator({ allowForks: true, allowedBaseBranches: ['release/*'] })));
    expect(loose).toMatchObject({ allowForks: true, baseAllowed: true, allowedBaseBranches: ['release/*'] });
  });

  it('takes the defaults when the file is broken, or sets what the operator does not allow', async () => {
    await fixture.commit({ '.terrapin.yml': 'permissions: [nope\n' });
    expect(await policyAt({ repo, prNumber: 4, pr: forMain }, deps())).toMatchObject({ permissions: DEFAULT_PERMISSIONS, allowForks: false });
    await fixture.commit({ '.terrapin.yml': CAROL_APPROVES });
    const noPermissions = operator({ allowForks: true, allowedPolicyKeys: ['allowForks'] });
    expect(await policyAt({ repo, prNumber: 4, pr: forMain }, deps(noPermissions))).toMatchObject({ permissions: DEFAULT_PERMISSIONS, allowForks: false });
  });
});

describe('policyAt and a full selection at the default branch agree', () => {
  it.each([
    ['a policy', CAROL_APPROVES, operator({ allowForks: true })],
    ['forks the operator refuses', CAROL_APPROVES, undefined],
    ['a broken file', 'allowForks: [\n', operator({ allowForks: true })],
    ['a key the operator does not allow', CAROL_APPROVES, operator({ allowedPolicyKeys: ['allowForks'] })],
    ['no file', null, undefined],
  ])('%s', async (_name, text, policy) => {
    await fixture.commit({ '.terrapin.yml': text });
    const pr = { baseBranch: 'main', labels: [] };
    const c = await selectProjects({ repo, prNumber: 4, cloneUrl: repo.cloneUrl, branch: 'HEAD', pr }, deps(policy));
    // What defaultBranchPolicy made of the selection before policyAt existed.
    const before = { sha: c.sha, branch: c.defaultBranch, permissions: c.permissions ?? DEFAULT_PERMISSIONS, allowForks: c.allowForks ?? false, baseAllowed: c.baseAllowed ?? false, allowedBaseBranches: c.allowedBaseBranches ?? [] };
    expect(await policyAt({ repo, prNumber: 4, pr }, deps(policy))).toEqual(before);
  });
});

describe('permissionsAt', () => {
  it("returns the permissions of that commit's own file, without a work dir", async () => {
    const first = await fixture.head();
    const second = await fixture.commit({ '.terrapin.yml': 'permissions:\n  apply: { level: admin }\n' });
    expect(await permissionsAt({ repo, sha: first }, deps())).toEqual(carol);
    expect((await permissionsAt({ repo, sha: second }, deps())).apply).toEqual({ level: 'admin', users: [], teams: [], allowAuthor: true });
    expect(await readdir(dataDir)).toEqual(['mirrors']);
  });

  it('gives the defaults for a commit without the file, or with a broken one', async () => {
    const without = await fixture.commit({ '.terrapin.yml': null });
    const broken = await fixture.commit({ '.terrapin.yml': 'permissions:\n  approve: { level: root }\n' });
    expect(await permissionsAt({ repo, sha: without }, deps())).toEqual(DEFAULT_PERMISSIONS);
    expect(await permissionsAt({ repo, sha: broken }, deps())).toEqual(DEFAULT_PERMISSIONS);
  });
});
