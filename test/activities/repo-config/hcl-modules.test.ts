// Module sources read from HCL text: what a regex alone would get wrong (comments, strings, nested blocks).
import { describe, expect, test } from 'vitest';
import { isLocalSource, moduleSources } from '../../../activities/repo-config/hcl-modules.ts';

describe('moduleSources', () => {
  test('reads the source of each module block, local or not', () => {
    const hcl = `
module "vpc" {
  source = "../../modules/vpc"
  cidr   = "10.0.0.0/16"
}

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.0"
}
module "dns" { source="./dns" }
module bare_label {
  source = "./bare"
}
`;
    expect(moduleSources(hcl)).toEqual(['../../modules/vpc', 'terraform-aws-modules/eks/aws', './dns', './bare']);
  });

  test('ignores commented-out modules of every comment style', () => {
    const hcl = `
# module "a" { source = "./a" }
// module "b" { source = "./b" }
/*
module "c" {
  source = "./c"
}
*/
module "d" {
  # source = "./not-this"
  source = "./d" // trailing comment
}
`;
    expect(moduleSources(hcl)).toEqual(['./d']);
  });

  test('braces and the word module inside strings do not confuse it', () => {
    const hcl = `
locals {
  note = "module \\"fake\\" { source = \\"./fake\\" }"
  tmpl = "\${var.a}}}"
}
module "real" {
  tags = { Name = "x}{" }
  source = "./real"
}
`;
    expect(moduleSources(hcl)).toEqual(['./real']);
  });

  test("a nested block's source is not the module's", () => {
    const hcl = `
module "app" {
  providers = { aws = aws.eu }
  settings {
    source = "./nested"
  }
  source = "../app"
}
resource "x" "y" { source = "./resource" }
`;
    expect(moduleSources(hcl)).toEqual(['../app']);
  });

  test('only ./ and ../ are local paths, as in Terraform', () => {
    expect(['./a', '../b', 'modules/c', 'git::https://x/y.git', 'hashicorp/consul/aws'].filter(isLocalSource)).toEqual(['./a', '../b']);
  });
});
