// The git activities registered on the worker, each closing over the deps.
import type { CheckoutInput, CleanupInput, PermissionsAtInput, PolicyAtInput, ReadFileAtInput, SelectProjectsInput } from '../shared/activity-contracts.ts';
import { branchHead, checkout, removeWorkDirs, revisionFacts, type BranchHeadInput, type GitDeps, type RevisionFactsInput } from './git.ts';
import { permissionsAt, policyAt } from './repo-policy.ts';
import { readFileAt } from './repo-files.ts';
import { selectProjects } from './select-projects.ts';

export function createGitActivities(deps: GitDeps) {
  return {
    checkout: (input: CheckoutInput) => checkout(input, deps),
    selectProjects: (input: SelectProjectsInput) => selectProjects(input, deps),
    branchHead: (input: BranchHeadInput) => branchHead(input, deps),
    readFileAt: (input: ReadFileAtInput) => readFileAt(input, deps),
    policyAt: (input: PolicyAtInput) => policyAt(input, deps),
    permissionsAt: (input: PermissionsAtInput) => permissionsAt(input, deps),
    removeWorkDirs: (input: CleanupInput) => removeWorkDirs(input, deps),
    revisionFacts: (input: RevisionFactsInput) => revisionFacts(input, deps),
  };
}
