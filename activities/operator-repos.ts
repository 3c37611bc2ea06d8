// Operator tools (the CLI, the MCP server) name a repository as "owner/name". Only the worker holds the
// App's key, so it is the worker that finds the installation and the clone URL: the tools need Temporal only.
import { ApplicationFailure } from '@temporalio/common';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import type { GithubSettings } from '../app/config.ts';
import { repoAllowed } from '../app/deliver.ts';
import type { RepoRef } from '../shared/contracts.ts';
import type { GithubClients } from './github-client.ts';
import { rethrowClassified } from './github.ts';

/** GitHub's own rules for owner and repository names. */
export const REPOSITORY_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;

export interface OperatorRepoDeps {
  settings: GithubSettings;
  github: GithubClients;
  /** TERRAPIN_REPO_ALLOWLIST: a repository the webhooks ignore is not the operator tools' either. */
  repoAllowlist: readonly string[];
}

export function createOperatorRepoActivities({ settings, github, repoAllowlist }: OperatorRepoDeps) {
  let app: Octokit | undefined;
  // Authenticated as the App itself (a JWT), the only identity that may ask where it is installed.
  const appClient = () =>
    (app ??= new Octokit({
      baseUrl: settings.baseUrl,
      authStrategy: createAppAuth,
      auth: { appId: settings.appId, privateKey: settings.privateKey },
      userAgent: 'terrapin',
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    }));

  return {
    /** "owner/name" → the repository as webhooks name it (GitHub's spelling), its installation and clone URL. */
    async resolveRepository({ repository }: { repository: string }): Promise<RepoRef> {
      if (!REPOSITORY_NAME.test(repository)) {
        throw ApplicationFailure.nonRetryable(`"${repository}" is not a repository name; expected owner/name`, 'InvalidRepository');
      }
      if (!repoAllowed(repoAllowlist, repository)) {
        throw ApplicationFailure.nonRetryable(`${repository} is not in TERRAPIN_REPO_ALLOWLIST`, 'RepositoryNotAllowed');
      }
      const [owner, repo] = repository.split('/') as [string, string];
      let installationId: number;
      try {
        installationId = (await appClient().rest.apps.getRepoInstallation({ owner, repo })).data.id;
      } catch (err) {
        if ((err as { status?: number }).status === 404) {
          throw ApplicationFailure.nonRetryable(`${repository}: no such repository, or the GitHub App is not installed on it`, 'RepositoryNotFound');
        }
        rethrowClassified(err, `finding the installation of ${repository}`);
      }
      try {
        const { data } = await github.forInstallation(installationId).rest.repos.get({ owner, repo });
        return { owner: data.owner.login, name: data.name, installationId, cloneUrl: data.clone_url };
      } catch (err) {
        rethrowClassified(err, `reading ${repository}`);
      }
    },
  };
}
