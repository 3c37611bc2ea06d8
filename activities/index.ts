// Every side effect of Terrapin, as Temporal activities registered on the worker.
import type { ServerConfig } from '../app/config.ts';
import type { Logger } from '../app/logger.ts';
import { createGithubActivities } from './github.ts';
import { createGithubClients, type GithubClients } from './github-client.ts';
import { createTerraformActivities } from './terraform.ts';
import { selectTerraformEnv } from './terraform-env.ts';

export interface ActivityDeps {
  config: ServerConfig;
  logger: Logger;
  /** Injected by tests that build their own clients; defaults to the app's installation auth. */
  github?: GithubClients;
}

export function createActivities({ config, github = createGithubClients(config.github) }: ActivityDeps) {
  return {
    ...createGithubActivities({
      github,
      temporalUiUrl: config.temporal.uiUrl,
      namespace: config.temporal.namespace,
    }),
    ...createTerraformActivities({
      dataDir: config.dataDir,
      passEnv: selectTerraformEnv(process.env, config.terraformEnv),
      getInstallationToken: (installationId) => github.installationToken(installationId),
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
