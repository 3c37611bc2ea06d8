// One GitHub issue per drifted project: opened when drift is found, kept current while it lasts, closed
// when it is gone. Noise stays low: the body is edited silently on every check, and a comment (which
// notifies) is only posted when the set of drifted resources changes or the drift ends.
// Safe to retry: the issue is found again by a hidden marker, comments carry markers of their own.
import { createHash } from 'node:crypto';
import { readBotFile } from './checkout-files.ts';
import type { Octokit } from '@octokit/rest';
import { activityInfo } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { GithubClients } from './github-client.ts';
import { render } from './render.ts';
import type { RepoRef } from '../shared/contracts.ts';
import { rethrowClassified } from './github.ts';

import { DRIFT_LABEL } from '../shared/contracts.ts';

export { DRIFT_LABEL };
const LABEL_COLOR = 'd93f0b';
const BODY_LIMIT = 65_536;
/** Resources listed in the body; the plan shows the rest. */
const MAX_LISTED = 100;

export interface DriftIssueReport {
  repo: RepoRef;
  project: string;
  /** The default branch commit that was checked. */
  sha: string;
  /** Drifted addresses (DriftReport.resources). */
  resources: string[];
  /** DriftReport.plan.summary.line */
  summaryLine: string;
  /** DriftReport.plan.textFile: the plan that brings the infrastructure back to the code. */
  planTextFile: string;
  /** DriftReport.refreshOnly.textFile, only when the refresh-only plan found changes. */
  refreshTextFile?: string;
  /** drift.reconcile of the project: tells readers that `/approve` on the issue applies the fix. */
  reconcile: boolean;
}

export interface ReportDriftResult {
  number: number;
  created: boolean;
  commented: boolean;
}

const bodyMarker = (project: string) => `<!-- terrapin:drift ${project} -->`;
const RESOURCES_MARKER = /<!-- terrapin:drift-resources ([0-9a-f]{64}) -->/;

/** Order-independent fingerprint of the drifted set, kept in the body to tell when it changed. */
function resourcesHash(resources: readonly string[]): string {
  return createHash('sha256').update([...new Set(resources)].sort().join('\n')).digest('hex');
}


const statusOf = (err: unknown) => (err as { status?: number }).status;

/** Keeps whole lines while the text fits in max characters. */
function cutLines(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = text.lastIndexOf('\n', Math.max(0, max));
  return end > 0 ? text.slice(0, end) : '';
}

const readText = (file: string | undefined) => (file ? readBotFile(file).catch(() => undefined) : Promise.resolve(undefined));

async function renderBody(report: DriftIssueReport, hash: string): Promise<string> {
  let planText = await readText(report.planTextFile);
  let refreshText = await readText(report.refreshTextFile);
  const truncated = { plan: false, refresh: false };
  const markers = `\n${bodyMarker(report.project)}\n<!-- terrapin:drift-resources ${hash} -->\n`;
  const build = async () =>
    (await render({
      template: 'drift/issue',
      data: {
        project: report.project,
        sha: report.sha,
        summaryLine: report.summaryLine,
        resources: report.resources.slice(0, MAX_LISTED),
        moreResources: Math.max(0, report.resources.length - MAX_LISTED),
        reconcile: report.reconcile,
        planText,
        refreshText,
        planTruncated: truncated.plan,
        refreshTruncated: truncated.refresh,
      },
    })) + markers;
  let body = await build();
  // Cut the longer plan text by what is over (plus room for the note), until the body fits.
  while (body.length > BODY_LIMIT && (planText || refreshText)) {
    const over = body.length - BODY_LIMIT + 100;
    if ((refreshText?.length ?? 0) > (planText?.length ?? 0)) {
      refreshText = cutLines(refreshText!, refreshText!.length - over);
      truncated.refresh = true;
    } else {
      planText = cutLines(planText!, planText!.length - over);
      truncated.plan = true;
    }
    body = await build();
  }
  if (body.length > BODY_LIMIT) throw ApplicationFailure.nonRetryable(`The drift issue of ${report.project} does not fit in an issue body`, 'DriftIssueTooLong');
  return body;
}

/** Creates the label unless the repository has it (drift issues, operator gate issues). */
export async function ensureLabel(octokit: Octokit, repo: RepoRef, name = DRIFT_LABEL, color = LABEL_COLOR): Promise<void> {
  try {
    await octokit.issues.getLabel({ owner: repo.owner, repo: repo.name, name });
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
    try {
      await octokit.issues.createLabel({ owner: repo.owner, repo: repo.name, name, color });
    } catch (createErr) {
      // 422: created meanwhile (another project's report, or an earlier attempt).
      if (statusOf(createErr) !== 422) throw createErr;
    }
  }
}

export function createDriftIssueActivities({ github }: { github: GithubClients }) {
  const client = (repo: RepoRef) => github.forInstallation(repo.installationId);
  const retried = () => activityInfo().attempt > 1;

  /** The open drift issue of a project: by its marker, or by its exact title if the marker was edited away. */
  async function findIssue(octokit: Octokit, repo: RepoRef, project: string) {
    const title = (await render({ template: 'drift/title', data: { project } })).trim();
    const issues = await octokit.paginate(octokit.issues.listForRepo, {
      owner: repo.owner,
      repo: repo.name,
      state: 'open',
      labels: DRIFT_LABEL,
      per_page: 100,
    });
    const open = issues.filter((i) => !i.pull_request);
    const issue = open.find((i) => (i.body ?? '').includes(bodyMarker(project))) ?? open.find((i) => i.title === title);
    return { title, issue };
  }

  /** Posts a comment unless an earlier attempt of this activity already did. */
  async function commentOnce(octokit: Octokit, repo: RepoRef, number: number, key: string, text: string): Promise<void> {
    const marker = `<!-- terrapin:${key} -->`;
    if (retried()) {
      const comments = await octokit.paginate(octokit.issues.listComments, { owner: repo.owner, repo: repo.name, issue_number: number, per_page: 100 });
      if (comments.some((c) => (c.body ?? '').includes(marker))) return;
    }
    await octokit.issues.createComment({ owner: repo.owner, repo: repo.name, issue_number: number, body: `${text}\n${marker}` });
  }

  return {
    /** Opens the project's drift issue, or brings its body up to date. */
    async reportDrift(report: DriftIssueReport): Promise<ReportDriftResult> {
      const { repo, project } = report;
      const octokit = client(repo);
      try {
        const { title, issue } = await findIssue(octokit, repo, project);
        const hash = resourcesHash(report.resources);
        const body = await renderBody(report, hash);
        if (!issue) {
          await ensureLabel(octokit, repo);
          const { data } = await octokit.issues.create({ owner: repo.owner, repo: repo.name, title, body, labels: [DRIFT_LABEL] });
          return { number: data.number, created: true, commented: false };
        }
        // Comment before editing the body: the body's fingerprint is what tells a retry the comment is due.
        const changed = RESOURCES_MARKER.exec(issue.body ?? '')?.[1] !== hash;
        if (changed) {
          const text = await render({ template: 'drift/changed', data: { project, sha: report.sha, count: report.resources.length } });
          await commentOnce(octokit, repo, issue.number, `drift-changed:${project}:${report.sha}:${hash.slice(0, 16)}`, text.trim());
        }
        if (issue.body !== body) {
          await octokit.issues.update({ owner: repo.owner, repo: repo.name, issue_number: issue.number, body });
        }
        return { number: issue.number, created: false, commented: changed };
      } catch (err) {
        rethrowClassified(err, `reporting drift of ${project}`);
      }
    },

    /** Says the drift is gone and closes the project's drift issue; does nothing when none is open. */
    async closeDrift({ repo, project, sha }: { repo: RepoRef; project: string; sha: string }): Promise<{ closed?: number }> {
      const octokit = client(repo);
      try {
        const { issue } = await findIssue(octokit, repo, project);
        if (!issue) return {};
        const text = await render({ template: 'drift/resolved', data: { project, sha } });
        await commentOnce(octokit, repo, issue.number, `drift-resolved:${project}:${sha}`, text.trim());
        await octokit.issues.update({ owner: repo.owner, repo: repo.name, issue_number: issue.number, state: 'closed', state_reason: 'completed' });
        return { closed: issue.number };
      } catch (err) {
        rethrowClassified(err, `closing the drift issue of ${project}`);
      }
    },
  };
}

export type DriftIssueActivities = ReturnType<typeof createDriftIssueActivities>;
