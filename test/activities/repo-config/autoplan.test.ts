// Which configured projects a push plans, from their whenModified globs (relative to each project's dir).
import { describe, expect, test } from 'vitest';
import { parseRepoConfigFile, projectsFromDetection, projectsToPlan, type RepoConfig } from '../../../activities/repo-config/index.ts';

function config(text: string): RepoConfig {
  const { config, errors } = parseRepoConfigFile(text, { cpuCount: 2 });
  expect(errors).toEqual([]);
  return config!;
}

const REPO = config(`
projects:
  - name: root
    dir: .
    autoplan: { whenModified: ["*.tf"] }
  - name: network
    dir: infra/network
    autoplan:
      whenModified: ["**/*.tf", "../../modules/vpc/**", "*.tfvars"]
  - name: app
    dir: infra/app
  - name: manual
    dir: infra/manual
    autoplan: { enabled: false }
`);

const planned = (changed: string[]) => projectsToPlan(REPO, changed).map((p) => p.name);

describe('projectsToPlan', () => {
  test('default globs: .tf, .tfvars and .tofu anywhere under the dir, and the lock file in it', () => {
    expect(planned(['infra/app/main.tf'])).toEqual(['app']);
    expect(planned(['infra/app/envs/prod.tfvars'])).toEqual(['app']);
    expect(planned(['infra/app/edge.tofu'])).toEqual(['app']);
    expect(planned(['infra/app/.terraform.lock.hcl'])).toEqual(['app']);
    expect(planned(['infra/app/README.md', 'infra/app/sub/.terraform.lock.hcl'])).toEqual([]);
  });

  test('globs may reach outside the project dir with ../', () => {
    expect(planned(['modules/vpc/main.tf'])).toEqual(['network']);
    expect(planned(['modules/vpc/README.md'])).toEqual(['network']);
  });

  test('globs replace the defaults: *.tfvars only matches directly in the dir', () => {
    expect(planned(['infra/network/prod.tfvars'])).toEqual(['network']);
    expect(planned(['infra/network/envs/prod.tfvars'])).toEqual([]);
  });

  test('a project at the repository root; the order is the config order, not the change order', () => {
    expect(planned(['infra/network/main.tf', 'main.tf', './infra/app/x.tf'])).toEqual(['root', 'network', 'app']);
    expect(planned(['infra/main.tf'])).toEqual([]);
  });

  test('autoplan disabled: never planned automatically', () => {
    expect(planned(['infra/manual/main.tf', 'infra/manual/x.tfvars'])).toEqual([]);
  });

  test('nothing changed, nothing planned', () => {
    expect(planned([])).toEqual([]);
  });
});

describe('projectsFromDetection', () => {
  test('detected projects get the config defaults', () => {
    const defaults = config('onFailure: none\ndefaults:\n  terraform: tofu\n').defaults;
    const [project] = projectsFromDetection([{ name: 'infra-network', dir: 'infra/network' }], defaults);
    expect(project).toEqual({ ...defaults, name: 'infra-network', dir: 'infra/network' });
    expect(project.onFailure).toBe('none');
    expect(project.terraform).toBe('tofu');
    project.hooks.prePlan.push('x');
    expect(defaults.hooks.prePlan).toEqual([]);
  });
});
