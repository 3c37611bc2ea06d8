// Projects for repositories without `.terrapin.yml` (or without `projects` in it).
//
// A root is a directory with `*.tf`/`*.tofu` files that no other directory uses as a local module
// source. A root is affected when a changed `*.tf`, `*.tfvars`, `*.tofu` or `.terraform.lock.hcl` is
// directly in it, or when it uses (directly or through other modules) a local module whose directory
// has such a change. Deleted roots are not seen: they are not in the head's tree.
import { posix } from 'node:path';
import { isLocalSource, moduleSources } from './hcl-modules.ts';

export interface DetectedProject {
  name: string;
  dir: string;
}

const TERRAFORM_SOURCE = /\.(tf|tofu)$/;
const TRIGGER = /(\.(tf|tfvars|tofu)|(^|\/)\.terraform\.lock\.hcl)$/;
// `.terraform/` holds downloaded providers and modules, never code of this repository.
const VENDORED = /(^|\/)\.terraform\//;

const cleanPath = (p: string) => posix.normalize(p).replace(/^\.\//, '');

export async function detectProjects(
  changedFiles: string[],
  repoFiles: string[],
  readFile: (path: string) => Promise<string>,
): Promise<DetectedProject[]> {
  const sourcesByDir = new Map<string, string[]>();
  for (const file of repoFiles.map(cleanPath)) {
    if (!TERRAFORM_SOURCE.test(file) || VENDORED.test(file)) continue;
    const dir = posix.dirname(file);
    sourcesByDir.set(dir, [...(sourcesByDir.get(dir) ?? []), file]);
  }

  // usedBy: module dir → the dirs whose code calls it.
  const usedBy = new Map<string, Set<string>>();
  for (const [dir, files] of sourcesByDir) {
    for (const file of files) {
      for (const source of moduleSources(await readFile(file)).filter(isLocalSource)) {
        const target = posix.normalize(posix.join(dir, source)).replace(/\/+$/, '') || '.';
        if (target === dir || target.startsWith('../') || !sourcesByDir.has(target)) continue;
        usedBy.set(target, (usedBy.get(target) ?? new Set()).add(dir));
      }
    }
  }
  const isRoot = (dir: string) => sourcesByDir.has(dir) && !usedBy.has(dir);

  const changedDirs = new Set(changedFiles.map(cleanPath).filter((f) => TRIGGER.test(f) && !VENDORED.test(f)).map((f) => posix.dirname(f)));
  const affected = new Set<string>();
  // Walk up from each changed dir through its callers; `seen` stops module cycles.
  const seen = new Set<string>();
  const visit = (dir: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    if (isRoot(dir)) affected.add(dir);
    for (const caller of usedBy.get(dir) ?? []) visit(caller);
  };
  for (const dir of changedDirs) visit(dir);

  return nameProjects([...affected].sort());
}

/** `infra/network` → `infra-network`, the root → `default`; repeats get `-2`, `-3`… */
function nameProjects(dirs: string[]): DetectedProject[] {
  const taken = new Set<string>();
  return dirs.map((dir) => {
    const base = dir === '.' ? 'default' : dir.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'project';
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    taken.add(name);
    return { name, dir };
  });
}
