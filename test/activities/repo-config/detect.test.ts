// Projects for repos without a config: Terraform roots with relevant changes, and roots using changed local modules.
import { describe, expect, test } from 'vitest';
import { detectProjects } from '../../../activities/repo-config/index.ts';

const usesModule = (name: string, source: string) => `module "${name}" {\n  source = "${source}"\n}\n`;

/** A platform repo: shared modules (one calling another), three roots, a nested root, docs and vendored code. */
const TREE: Record<string, string> = {
  'README.md': '# infra',
  'modules/vpc/main.tf': 'resource "terraform_data" "vpc" {}\n',
  'modules/vpc/variables.tf': 'variable "cidr" {}\n',
  'modules/service/main.tf': usesModule('vpc', '../vpc'),
  'modules/service/README.md': 'docs',
  'infra/network/main.tf': usesModule('vpc', '../../modules/vpc'),
  'infra/network/prod.tfvars': 'cidr = "10.0.0.0/16"\n',
  'infra/network/.terraform.lock.hcl': '# lock\n',
  'infra/app/main.tf': usesModule('svc', '../../modules/service') + usesModule('eks', 'terraform-aws-modules/eks/aws'),
  'infra/app/prod/main.tf': 'resource "terraform_data" "prod" {}\n',
  'infra/app/prod/prod.tfvars': 'x = 1\n',
  'infra/dns/main.tf': usesModule('zone', './zone') + '# module "old" { source = "../network" }\n',
  'infra/dns/zone/main.tf': 'resource "terraform_data" "zone" {}\n',
  'infra/dns/.terraform.lock.hcl': '# lock\n',
  'infra/dns/.terraform/modules/zone/main.tf': usesModule('x', '../../../network'),
  'tofu/edge/main.tofu': 'resource "terraform_data" "edge" {}\n',
};

async function detect(changed: string[], tree: Record<string, string> = TREE) {
  const reads: string[] = [];
  const readFile = async (path: string) => {
    reads.push(path);
    if (!(path in tree)) throw new Error(`no such file: ${path}`);
    return tree[path];
  };
  const projects = await detectProjects(changed, Object.keys(tree), readFile);
  return { projects, reads };
}

const dirs = async (changed: string[], tree?: Record<string, string>) => (await detect(changed, tree)).projects.map((p) => p.dir);

describe('detectProjects', () => {
  test('a changed .tf in a root plans that root, named after its dir', async () => {
    expect((await detect(['infra/network/main.tf'])).projects).toEqual([{ name: 'infra-network', dir: 'infra/network' }]);
  });

  test('a changed module used by two roots plans both, following module-to-module calls', async () => {
    // modules/vpc is called by infra/network directly and by infra/app through modules/service.
    expect(await dirs(['modules/vpc/variables.tf'])).toEqual(['infra/app', 'infra/network']);
    expect(await dirs(['modules/service/main.tf'])).toEqual(['infra/app']);
  });

  test('a lock file or tfvars change counts; a README-only change plans nothing', async () => {
    expect(await dirs(['infra/dns/.terraform.lock.hcl'])).toEqual(['infra/dns']);
    expect(await dirs(['infra/network/prod.tfvars'])).toEqual(['infra/network']);
    expect(await dirs(['README.md', 'modules/service/README.md'])).toEqual([]);
  });

  test('nested roots are their own projects, apart from their parent', async () => {
    expect((await detect(['infra/app/prod/prod.tfvars'])).projects).toEqual([{ name: 'infra-app-prod', dir: 'infra/app/prod' }]);
    expect(await dirs(['infra/app/main.tf', 'infra/app/prod/main.tf'])).toEqual(['infra/app', 'infra/app/prod']);
  });

  test('a local module inside a root (./zone) is not a root; changing it plans its caller', async () => {
    expect(await dirs(['infra/dns/zone/main.tf'])).toEqual(['infra/dns']);
  });

  test('.tofu files make roots too', async () => {
    expect(await dirs(['tofu/edge/main.tofu'])).toEqual(['tofu/edge']);
  });

  test('commented-out module calls and vendored .terraform/ code do not make a root a module', async () => {
    // infra/network is "called" only from a comment and from .terraform/: it stays a root.
    expect(await dirs(['infra/network/main.tf', 'infra/dns/.terraform/modules/zone/main.tf'])).toEqual(['infra/network']);
  });

  test('reads only Terraform files, and none under .terraform/', async () => {
    const { reads } = await detect(['infra/network/main.tf']);
    expect(reads.sort()).toEqual(Object.keys(TREE).filter((f) => /\.(tf|tofu)$/.test(f) && !f.includes('.terraform/')).sort());
  });

  test('the repository root is "default"; clashing names get a suffix', async () => {
    const tree = { 'main.tf': '', 'infra/network/main.tf': '', 'infra-network/main.tf': '' };
    expect((await detect(['main.tf', 'infra/network/main.tf', 'infra-network/main.tf'], tree)).projects).toEqual([
      { name: 'default', dir: '.' },
      { name: 'infra-network', dir: 'infra-network' },
      { name: 'infra-network-2', dir: 'infra/network' },
    ]);
  });

  test('a root deleted by the PR is not in the tree, so it is not detected', async () => {
    expect(await dirs(['infra/old/main.tf'])).toEqual([]);
  });

  test('module cycles end (both dirs are modules, neither a root)', async () => {
    const tree = { 'a/main.tf': usesModule('b', '../b'), 'b/main.tf': usesModule('a', '../a'), 'root/main.tf': usesModule('a', '../a') };
    expect(await dirs(['b/main.tf'], tree)).toEqual(['root']);
  });

  test('sources outside the repository are ignored', async () => {
    const tree = { 'main.tf': usesModule('x', '../outside'), 'app/main.tf': usesModule('root', '../') };
    expect(await dirs(['main.tf'], tree)).toEqual(['app']);
  });
});
