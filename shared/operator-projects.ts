// The configured projects of a repository at its default branch, as the operator tools see them
// (operator/projects.ts asks the worker: workflows/operator-projects.ts). Types only.
import type { ApplyMode, DriftSettings, InputRef, TerraformBinary } from './config.ts';
import type { RepoRef } from './contracts.ts';

export const OPERATOR_PROJECTS_WORKFLOW_TYPE = 'operatorProjectsWorkflow';

export interface OperatorProjectsInput {
  /** "owner/name", as the operator typed it. */
  repository: string;
}

/** One project of `.terrapin.yml`, with only what describes it (no env, hooks or requirements). */
export interface ConfiguredProject {
  name: string;
  dir: string;
  workspace: string;
  terraform: TerraformBinary;
  apply: ApplyMode;
  dependsOn: string[];
  /** variable → upstream output: `vpc_id: network.outputs.vpc_id`. */
  inputs: Record<string, InputRef>;
  drift?: DriftSettings;
}

export interface OperatorProjectsResult {
  /** "owner/name" as GitHub spells it. */
  repository: string;
  /** The repository as workflows take it (installation, clone URL): what an operator run is started with. */
  repo: RepoRef;
  defaultBranch?: string;
  /** The default branch's head the file was read at. */
  sha: string;
  projects: ConfiguredProject[];
  /** Every problem in `.terrapin.yml` ("file:line:col: path: message"); then there are no projects. */
  configErrors?: string[];
}
