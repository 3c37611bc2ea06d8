// Installation-scoped Octokit clients for the activities.
// Every client and every token request is built with the configured base URL: on GitHub Enterprise
// (GHE_HOST) an auth call made through a client without it silently goes to api.github.com.
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import type { GithubSettings } from '../app/config.ts';
import { observeGithub } from '../app/metrics.ts';

export interface GithubClients {
  forInstallation(installationId: number): Octokit;
  /**
   * An installation token. With `repository`, one that can only read that repository's contents: what a
   * clone needs, and all it could lose.
   */
  installationToken(installationId: number, repository?: string): Promise<string>;
}

export function createGithubClients(settings: GithubSettings): GithubClients {
  const clients = new Map<number, Octokit>();

  const forInstallation = (installationId: number): Octokit => {
    let client = clients.get(installationId);
    if (!client) {
      client = new Octokit({
        baseUrl: settings.baseUrl,
        authStrategy: createAppAuth,
        auth: { appId: settings.appId, privateKey: settings.privateKey, installationId },
        userAgent: 'terrapin',
        // Temporal's activity retry policy owns retries; Octokit logging would only duplicate ours.
        log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      });
      countRequests(client);
      clients.set(installationId, client);
    }
    return client;
  };

  return {
    forInstallation,
    async installationToken(installationId, repository) {
      // auth-app caches tokens (per scope) until shortly before they expire, so this is cheap to call per clone.
      const scope = repository ? { repositoryNames: [repository], permissions: { contents: 'read' } } : {};
      const auth = (await forInstallation(installationId).auth({ type: 'installation', ...scope })) as { token: string };
      return auth.token;
    },
  };
}

/** Every request (token requests included) is counted, with the rate limit its answer reports. */
function countRequests(client: Octokit): void {
  client.hook.wrap('request', async (request, options) => {
    try {
      const response = await request(options);
      observeGithub(options.method, response.status, response.headers);
      return response;
    } catch (err) {
      const failed = err as { status?: number; response?: { headers?: Record<string, string> } };
      observeGithub(options.method, failed.status, failed.response?.headers);
      throw err;
    }
  });
}
