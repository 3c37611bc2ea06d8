// No webhook is lost (issue 13). GitHub does not redeliver a delivery that failed (Temporal down, the server
// answering 503): these activities find such deliveries in the App's own delivery log and ask GitHub to send
// them again, and a sweep compares open PRs with their workflows for what the log no longer holds.
// Both go through app/deliver.ts (allowlist, dedupe by delivery id) like every webhook.
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { GithubSettings } from '../app/config.ts';
import { createDeliverer, repoAllowed, type Deliverer } from '../app/deliver.ts';
import { snapshotFrom, type PullRequestFields } from '../app/events/pull-request.ts';
import type { Logger } from '../app/logger.ts';
import { PR_WORKFLOW_TYPE, parsePrWorkflowId, prStateQuery, prWorkflowId, type PrStatus, type RepoRef } from '../shared/contracts.ts';
import type { GithubClients } from './github-client.ts';
import { rethrowClassified } from './github.ts';

/** One attempt in the App's delivery log (GET /app/hook/deliveries), the fields used here. */
interface HookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  status_code: number;
  event: string;
}

/** A webhook that never got through: its latest failed attempt, to be sent again. */
export interface RedeliveryCandidate {
  id: number;
  guid: string;
  deliveredAt: string;
  event: string;
}

/** Pages of 100 read at most per run: the log is newest first, and a run stops at the window's start anyway. */
const MAX_DELIVERY_PAGES = 20;

/**
 * Status 0 is a timeout or a refused connection, 5xx the server's "try again" (Temporal unreachable). A 4xx
 * (bad signature, malformed payload) would fail again the same way: it is not sent again.
 */
const retryable = (d: HookDelivery) => d.status_code === 0 || d.status_code >= 500;
const succeeded = (d: HookDelivery) => d.status_code >= 200 && d.status_code < 300;

/**
 * Per guid (one webhook, shared by all its attempts): a candidate when no attempt succeeded, the latest
 * failed for a retryable reason, and no redelivery was ever requested for it (by this reconciler in a run
 * whose memory is gone, or by someone in GitHub's UI): each webhook is sent again at most once.
 */
export function redeliveryCandidates(attempts: readonly HookDelivery[]): RedeliveryCandidate[] {
  const byGuid = new Map<string, HookDelivery[]>();
  for (const d of attempts) byGuid.set(d.guid, [...(byGuid.get(d.guid) ?? []), d]);
  const candidates: RedeliveryCandidate[] = [];
  for (const [guid, all] of byGuid) {
    if (all.some(succeeded) || all.some((d) => d.redelivery)) continue;
    const latest = all.toSorted((a, b) => Date.parse(b.delivered_at) - Date.parse(a.delivered_at) || b.id - a.id)[0]!;
    if (!retryable(latest)) continue;
    candidates.push({ id: latest.id, guid, deliveredAt: latest.delivered_at, event: latest.event });
  }
  return candidates.toSorted((a, b) => Date.parse(a.deliveredAt) - Date.parse(b.deliveredAt));
}

export interface SweepInput {
  /** Repositories looked at per sweep (those with running PR workflows; the rest wait for a later sweep). */
  maxRepositories?: number;
  /** Running PR workflows read from Temporal's visibility store per sweep. */
  maxWorkflows?: number;
}

export interface SweepResult {
  /** Open PRs with a running workflow, compared. */
  checked: number;
  /** PR workflow ids sent a synthetic `synchronize` (their head was behind). */
  synchronized: string[];
  /** PR workflow ids sent a synthetic `closed` (the PR was closed). */
  closed: string[];
}

interface OpenPull extends PullRequestFields {
  number: number;
}

export interface DeliveryActivityDeps {
  settings: GithubSettings;
  github: GithubClients;
  temporal: Client;
  taskQueue: string;
  repoAllowlist: readonly string[];
  logger: Logger;
}

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export function createDeliveryActivities({ settings, github, temporal, taskQueue, repoAllowlist, logger }: DeliveryActivityDeps) {
  let app: Octokit | undefined;
  // The delivery log and the installation list belong to the App itself: a JWT, not an installation token.
  const appClient = () =>
    (app ??= new Octokit({ baseUrl: settings.baseUrl, authStrategy: createAppAuth, auth: { appId: settings.appId, privateKey: settings.privateKey }, userAgent: 'terrapin', log: quiet }));
  let deliverer: Deliverer | undefined;
  const deliver = () => (deliverer ??= createDeliverer({ client: temporal, taskQueue, repoAllowlist, logger: logger.child({ component: 'sweep' }) }));

  /** Running PR workflows by repository (owner/name, lower case) → their PR numbers; one visibility scan. */
  async function runningPrWorkflows(maxWorkflows: number): Promise<Map<string, Set<number>>> {
    const byRepo = new Map<string, Set<number>>();
    let seen = 0;
    for await (const execution of temporal.workflow.list({ query: `WorkflowType = '${PR_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'` })) {
      if (++seen > maxWorkflows) break;
      const id = parsePrWorkflowId(execution.workflowId);
      if (!id) continue;
      const key = `${id.owner}/${id.repo}`.toLowerCase();
      byRepo.set(key, (byRepo.get(key) ?? new Set()).add(id.number));
    }
    return byRepo;
  }

  /** The installations' repositories that have running PR workflows (the rest have nothing to catch up). */
  async function activeRepositories(active: Map<string, Set<number>>, maxRepositories: number): Promise<Array<{ repo: RepoRef; numbers: Set<number> }>> {
    const found: Array<{ repo: RepoRef; numbers: Set<number> }> = [];
    const installations = await appClient().paginate(appClient().rest.apps.listInstallations, { per_page: 100 });
    for (const installation of installations) {
      const client = github.forInstallation(installation.id);
      for await (const { data } of client.paginate.iterator(client.rest.apps.listReposAccessibleToInstallation, { per_page: 100 })) {
        for (const r of data as Array<{ full_name: string; name: string; owner: { login: string }; clone_url: string }>) {
          const numbers = active.get(r.full_name.toLowerCase());
          if (!numbers || !repoAllowed(repoAllowlist, r.full_name)) continue;
          found.push({ repo: { owner: r.owner.login, name: r.name, installationId: installation.id, cloneUrl: r.clone_url }, numbers });
          if (found.length >= maxRepositories) return found;
        }
      }
    }
    return found;
  }

  async function workflowHead(workflowId: string): Promise<PrStatus | undefined> {
    try {
      return await temporal.workflow.getHandle(workflowId).query(prStateQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }

  return {
    /** The App's failed webhooks of the window (newest first in GitHub's log, read until older than `since`). */
    async listFailedDeliveries({ since }: { since: string }): Promise<RedeliveryCandidate[]> {
      const from = Date.parse(since);
      const attempts: HookDelivery[] = [];
      try {
        let pages = 0;
        for await (const { data } of appClient().paginate.iterator(appClient().rest.apps.listWebhookDeliveries, { per_page: 100 })) {
          const page = data as HookDelivery[];
          attempts.push(...page.filter((d) => Date.parse(d.delivered_at) >= from));
          if (++pages >= MAX_DELIVERY_PAGES || page.some((d) => Date.parse(d.delivered_at) < from)) break;
        }
      } catch (err) {
        rethrowClassified(err, 'listing the App\'s webhook deliveries');
      }
      return redeliveryCandidates(attempts);
    },

    /**
     * The result of the newest completed reconciler run: what it asked GitHub for stays asked for. Read from
     * Temporal's visibility store, which may lag a moment behind; runs are minutes apart.
     */
    async lastReconcileResult({ workflowType }: { workflowType: string }): Promise<unknown> {
      const query = `WorkflowType = '${workflowType}' AND ExecutionStatus = 'Completed'`;
      let newest: { workflowId: string; runId: string; closeTime?: Date } | undefined;
      let seen = 0;
      for await (const run of temporal.workflow.list({ query })) {
        if ((run.closeTime?.getTime() ?? 0) > (newest?.closeTime?.getTime() ?? -1)) newest = run;
        // Listed newest first by start; a handful covers any overlap.
        if (++seen >= 10) break;
      }
      return newest ? temporal.workflow.getHandle(newest.workflowId, newest.runId).result() : undefined;
    },

    /** Asks GitHub to send one delivery again; the workflow calls it once per webhook, never retried. */
    async redeliverWebhook({ id }: { id: number }): Promise<void> {
      try {
        await appClient().rest.apps.redeliverWebhookDelivery({ delivery_id: id });
      } catch (err) {
        rethrowClassified(err, `requesting redelivery of webhook delivery ${id}`);
      }
    },

    /**
     * Every open PR's head against its running workflow (a missed `synchronize`), and every running PR
     * workflow against its PR (a missed `closed`). Cheap: only repositories with running PR workflows are
     * read (one page of open PRs each), and only PRs that have a workflow are touched: a PR opened before
     * the App was installed is not planned by a sweep. Synthetic delivery ids name the PR and the commit,
     * so a sweep repeated before the workflow caught up is a duplicate.
     */
    async sweepOpenPullRequests({ maxRepositories = 200, maxWorkflows = 1000 }: SweepInput = {}): Promise<SweepResult> {
      const result: SweepResult = { checked: 0, synchronized: [], closed: [] };
      for (const { repo, numbers } of await activeRepositories(await runningPrWorkflows(maxWorkflows), maxRepositories)) {
        const client = github.forInstallation(repo.installationId);
        // One page: a repository with more than 100 open PRs has its most recently updated swept.
        const { data } = await client.rest.pulls.list({ owner: repo.owner, repo: repo.name, state: 'open', sort: 'updated', direction: 'desc', per_page: 100 });
        const pulls = data as unknown as OpenPull[];
        for (const pull of pulls) {
          if (!numbers.has(pull.number)) continue;
          result.checked++;
          const workflowId = prWorkflowId(repo.owner, repo.name, pull.number);
          const status = await workflowHead(workflowId);
          if (!status?.headSha || status.headSha === pull.head.sha) continue;
          const snapshot = snapshotFrom(pull, repo.cloneUrl);
          await deliver().pr({
            pr: { repo, number: pull.number },
            snapshot,
            event: { type: 'pr-updated', deliveryId: `sweep-synchronize:${workflowId}@${pull.head.sha}`, actor: pull.user?.login ?? 'ghost', action: 'synchronize', pr: snapshot },
          });
          result.synchronized.push(workflowId);
        }
        // Running, yet not among the open PRs: closed, unless it is past the first page.
        for (const number of numbers) {
          if (pulls.some((p) => p.number === number)) continue;
          const workflowId = prWorkflowId(repo.owner, repo.name, number);
          const status = await workflowHead(workflowId);
          // A merged PR's workflow stays running while it follows its deploys: it saw its `closed`.
          if (!status || status.deploys) continue;
          const { data: pull } = await client.rest.pulls.get({ owner: repo.owner, repo: repo.name, pull_number: number });
          if (pull.state !== 'closed') continue;
          const mergeCommitSha = pull.merged ? (pull.merge_commit_sha ?? undefined) : undefined;
          await deliver().pr({
            pr: { repo, number },
            snapshot: snapshotFrom(pull as unknown as PullRequestFields, repo.cloneUrl),
            event: { type: 'pr-closed', deliveryId: `sweep-closed:${workflowId}`, actor: pull.user?.login ?? 'ghost', merged: pull.merged === true, ...(mergeCommitSha ? { mergeCommitSha } : {}) },
          });
          result.closed.push(workflowId);
        }
      }
      return result;
    },
  };
}
