// Deploy plumbing: hands revisions and upstream results to a project's deploy queue (signalWithStart),
// keeps a PR's approved plan past the merge (its work dir is deleted then), and tells workflows whether
// the namespace has Terrapin's search attributes (a run that set unregistered ones would fail its tasks).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Logger } from '../app/logger.ts';
import { SEARCH_ATTRIBUTES } from '../shared/records.ts';
import { DEPLOY_SIGNAL, DEPLOY_WORKFLOW_TYPE, deployWorkflowId, type RepoRef, type DeployEvent } from '../shared/contracts.ts';
import { prWorkRoot } from './git.ts';
import { signalProjectWorkflow } from './project-workflows.ts';
import { readBotFile, writeBotFile } from './checkout-files.ts';

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function createDeployActivities({ client, dataDir, namespace, logger }: { client: Client; dataDir: string; namespace: string; logger: Logger }) {
  let registered: Promise<boolean> | undefined;
  return {
    async enqueueDeploy({ repo, project, event }: { repo: RepoRef; project: string; event: DeployEvent }): Promise<void> {
      await signalProjectWorkflow(client, { type: DEPLOY_WORKFLOW_TYPE, workflowId: deployWorkflowId(repo, project), signal: DEPLOY_SIGNAL }, repo, project, event);
    },

    /** Copies the approved plan's JSON and text to <data>/deploys/<owner>/<repo>/<project>/pr-<n>-<sha>.*. */
    async keepApprovedPlan(input: { repo: RepoRef; prNumber: number; project: string; sha: string; showJsonFile: string; planTextFile: string }): Promise<{ showJsonFile: string; planTextFile: string }> {
      if (!SAFE.test(input.project) || !/^[0-9a-f]{40,64}$/.test(input.sha)) throw ApplicationFailure.nonRetryable('invalid project or sha', 'InvalidInput');
      prWorkRoot(dataDir, input.repo.owner, input.repo.name, 0); // validates owner and name as path segments
      const dir = join(dataDir, 'deploys', input.repo.owner, input.repo.name, input.project);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const kept = { showJsonFile: join(dir, `pr-${input.prNumber}-${input.sha}.json`), planTextFile: join(dir, `pr-${input.prNumber}-${input.sha}.txt`) };
      // Never through a symlink at either end: the source is in a PR's bot dir.
      await writeBotFile(kept.showJsonFile, await readBotFile(input.showJsonFile));
      await writeBotFile(kept.planTextFile, await readBotFile(input.planTextFile));
      return kept;
    },

    /** Whether every Terrapin search attribute is registered in the namespace (asked once per worker). */
    async searchAttributesRegistered(): Promise<boolean> {
      registered ??= client.connection.operatorService
        .listSearchAttributes({ namespace })
        .then(({ customAttributes }) => {
          const missing = Object.values(SEARCH_ATTRIBUTES).filter((k) => !customAttributes?.[k.name]);
          if (missing.length > 0) logger.warn({ missing: missing.map((k) => k.name) }, 'search attributes not registered: project runs and deploy queues are recorded without them (see README)');
          return missing.length === 0;
        })
        .catch((err: unknown) => {
          logger.warn({ err }, 'could not list search attributes: project runs and deploy queues are recorded without them');
          return false;
        });
      return registered;
    },
  };
}
