// Builds the workflow's view of a repository from any webhook payload that names one.
import type { RepoRef } from '../../shared/contracts.ts';

interface RepoPayload {
  repository?: { name: string; owner: { login: string }; clone_url: string };
  installation?: { id: number };
}

/** undefined when the event carries no installation: without one the workflow could not act on the repo. */
export function repoRefFrom(payload: RepoPayload): RepoRef | undefined {
  const { repository, installation } = payload;
  if (!repository || !installation) return undefined;
  return {
    owner: repository.owner.login,
    name: repository.name,
    installationId: installation.id,
    cloneUrl: repository.clone_url,
  };
}
