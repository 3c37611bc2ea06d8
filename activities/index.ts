// Every side effect of Terrapin, as Temporal activities registered on the worker.
import type { ServerConfig } from '../app/config.ts';
import type { Logger } from '../app/logger.ts';
import { createGithubActivities, retryTransient } from './github.ts';
import { heartbeatIfActivity } from './process.ts';
import { createGithubClients, type GithubClients } from './github-client.ts';
import type { Client } from '@temporalio/client';
import { createLockActivities } from './locks.ts';
import { createDriftIssueActivities } from './drift-issues.ts';
import { createGateIssueActivities } from './gate-issues.ts';
import { createDriftScheduleActivities } from './drift-schedules.ts';
import { createDriftRunActivities } from './drift-runs.ts';
import { createDeployActivities } from './deploys.ts';
import { comparePlans } from './plan-compare.ts';
import { createTerraformActivities } from './terraform.ts';
import { createInterruptedApplyActivities } from './interrupted-apply.ts';
import { createPolicyCheckActivities } from './policy-checks.ts';
import { createLogTailActivities } from './log-tail.ts';
import { createGitActivities } from './git-activities.ts';
import type { GitDeps } from './git.ts';
import { selectTerraformEnv } from './terraform-env.ts';
import { resolveSandbox, type Sandbox } from './sandbox.ts';
import { createOperatorRepoActivities } from './operator-repos.ts';
import { createDeliveryActivities } from './deliveries.ts';
import { openArtifactStore, type ArtifactStore } from './artifacts/index.ts';

export interface ActivityDeps {
  config: ServerConfig;
  logger: Logger;
  /** Injected by tests that build their own clients; defaults to the app's installation auth. */
  github?: GithubClients;
  /** The worker's Temporal client: lock requests are signals to lock workflows. */
  temporal: Client;
  /** How terraform and hooks run; the worker resolves it at start (app/worker.ts), tests may pass their own. */
  sandbox?: Sandbox | Promise<Sandbox>;
  /** Where plans and logs go (app/worker.ts opens it from the config and closes it); default: from the config. */
  artifacts?: ArtifactStore;
}

/** Resolved once, on first use; a failure is reported to the activity that needs it, not as an unhandled rejection. */
function lazySandbox(config: ServerConfig): Promise<Sandbox> {
  const sandbox = resolveSandbox(config.operatorPolicy.runner);
  sandbox.catch(() => undefined);
  return sandbox;
}

export function createActivities({
  config,
  logger,
  temporal,
  github = createGithubClients(config.github),
  sandbox = lazySandbox(config),
  artifacts = openArtifactStore(config.artifacts ?? { kind: 'filesystem' }, config.dataDir),
}: ActivityDeps) {
  const gitDeps: GitDeps = {
    dataDir: config.dataDir,
    operatorPolicy: config.operatorPolicy,
    // A clone waits on this token: ride out GitHub's brief faults here rather than fail the checkout.
    getInstallationToken: (installationId, repository) =>
      retryTransient('fetching the installation token', () => github.installationToken(installationId, repository), { onWait: () => heartbeatIfActivity({ waiting: 'installation token' }) }),
  };
  const terraformDeps = { ...gitDeps, passEnv: selectTerraformEnv(process.env, config.terraformEnv), sandbox, artifacts };
  const terraform = createTerraformActivities(terraformDeps);
  const git = createGitActivities(gitDeps);
  return {
    ...createLockActivities({ client: temporal }),
    // Drift detection (issue 4): issues and schedules, ready for the drift workflow.
    ...createDriftIssueActivities({ github }),
    // Operator runs (issue 12): the issue an apply or destroy waits behind.
    ...createGateIssueActivities({ github }),
    ...createDriftScheduleActivities({ client: temporal }),
    ...createDriftRunActivities({ client: temporal, selectProjects: git.selectProjects }),
    ...createDeployActivities({ client: temporal, dataDir: config.dataDir, namespace: config.temporal.namespace, logger }),
    comparePlans,
    ...createGithubActivities({
      github,
      temporalUiUrl: config.temporal.uiUrl,
      namespace: config.temporal.namespace,
    }),
    ...terraform,
    // Issue 13: what became of an apply whose worker died.
    ...createInterruptedApplyActivities(terraformDeps),
    ...createPolicyCheckActivities({ ...gitDeps, sandbox }),
    // The operator tools (CLI, MCP) name repositories as owner/name.
    ...createOperatorRepoActivities({ settings: config.github, github, repoAllowlist: config.repoAllowlist }),
    ...createLogTailActivities({ dataDir: config.dataDir }),
    // Issue 13: failed webhooks sent again, open PRs swept against their workflows.
    ...createDeliveryActivities({ settings: config.github, github, temporal, taskQueue: config.temporal.taskQueue, repoAllowlist: config.repoAllowlist, logger }),
    // After terraform's: its checkout, removeWorkDirs and revisionFacts give way to these.
    ...git,
  };
}

export type Activities = ReturnType<typeof createActivities>;
