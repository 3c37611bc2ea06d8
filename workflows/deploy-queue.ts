// Hands one commit to the deploy queues of the `apply: afterMerge` projects it changed (from a merged PR's
// workflow or a push's), each revision told which of those projects it waits for and which wait for it.
import type { ResolvedProject } from '../shared/config.ts';
import { enqueueDeploy } from './activities.ts';
import type { DeployRevision, RepoRef } from '../shared/contracts.ts';

export async function queueDeploys(
  repo: RepoRef,
  changed: readonly ResolvedProject[],
  revisionOf: (p: ResolvedProject) => Promise<Omit<DeployRevision, 'upstreams' | 'downstreams'>>,
): Promise<string[]> {
  const targets = changed.filter((p) => p.apply === 'afterMerge');
  const names = targets.map((p) => p.name);
  for (const p of targets) {
    const revision: DeployRevision = {
      ...(await revisionOf(p)),
      upstreams: p.dependsOn.filter((d) => names.includes(d)),
      downstreams: targets.filter((x) => x.dependsOn.includes(p.name)).map((x) => x.name),
    };
    await enqueueDeploy({ repo, project: p.name, event: { type: 'revision', revision } });
  }
  return names;
}
