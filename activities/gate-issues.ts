// The GitHub issue an operator's apply or destroy waits behind: opened with the plan (change summary and
// plan text per project), answered with comments (postComment), closed when the run is over.
// Safe to retry: a retried open finds the issue it already made by a hidden marker in the bot's own body.
import { activityInfo } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { readBotFile } from './checkout-files.ts';
import { ensureLabel } from './drift-issues.ts';
import type { GithubClients } from './github-client.ts';
import { rethrowClassified } from './github.ts';
import { readChangeSummary, render } from './render.ts';
import type { RepoRef } from '../shared/contracts.ts';
import { GATE_LABEL } from '../shared/operator.ts';

const LABEL_COLOR = '5319e7';
const BODY_LIMIT = 65_536;

export interface GateSection {
  project: string;
  runId: string;
  summaryLine: string;
  planTextFile: string;
  showJsonFile?: string;
}

export interface GateIssueRequest {
  repo: RepoRef;
  kind: 'apply' | 'destroy';
  project: string;
  /** Identifies this request (the operator workflow's run): a retry finds its issue by it. */
  requestId: string;
  sha: string;
  requestedBy?: string;
  /** Per project, in the order they would run. */
  sections: GateSection[];
  /** What approval takes, for the reader (templates in requirements/ render nothing here: plain data). */
  approval: { users: string[]; teams: string[]; level: string; count: number; destroyNeeds?: number };
}

/** Keeps whole lines while the text fits in max characters. */
function cutLines(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = text.lastIndexOf('\n', Math.max(0, max));
  return end > 0 ? text.slice(0, end) : '';
}

async function renderBody(req: GateIssueRequest, marker: string): Promise<string> {
  const sections = await Promise.all(
    req.sections.map(async (s) => ({
      project: s.project,
      runId: s.runId,
      summaryLine: s.summaryLine,
      changeSummary: await readChangeSummary(s.showJsonFile),
      planText: await readBotFile(s.planTextFile).catch(() => undefined),
      truncated: false,
    })),
  );
  const build = async () =>
    (await render({ template: 'gate/issue', data: { kind: req.kind, destroy: req.kind === 'destroy', project: req.project, sha: req.sha, shortSha: req.sha.slice(0, 7), requestedBy: req.requestedBy, many: sections.length > 1, sections, approval: req.approval } })) + `\n${marker}\n`;
  let body = await build();
  // Cut the longest plan text by what is over (plus room for the note) until the body fits.
  while (body.length > BODY_LIMIT) {
    const longest = sections.filter((s) => s.planText).sort((a, b) => b.planText!.length - a.planText!.length)[0];
    if (!longest) break;
    longest.planText = cutLines(longest.planText!, longest.planText!.length - (body.length - BODY_LIMIT + 100));
    longest.truncated = true;
    body = await build();
  }
  if (body.length > BODY_LIMIT) throw ApplicationFailure.nonRetryable(`The request for ${req.project} does not fit in an issue body`, 'GateIssueTooLong');
  return body;
}

export function createGateIssueActivities({ github }: { github: GithubClients }) {
  const client = (repo: RepoRef) => github.forInstallation(repo.installationId);
  return {
    /** Opens the issue an operator's apply or destroy waits behind; its number and link. */
    async openGateIssue(req: GateIssueRequest): Promise<{ number: number; url: string }> {
      const { repo } = req;
      const octokit = client(repo);
      const marker = `<!-- terrapin:gate ${req.requestId} -->`;
      try {
        if (activityInfo().attempt > 1) {
          const open = await octokit.paginate(octokit.issues.listForRepo, { owner: repo.owner, repo: repo.name, state: 'open', labels: GATE_LABEL, per_page: 100 });
          // Only the app's own issue: anyone can paste a marker into an issue of theirs.
          const mine = open.find((i) => i.user?.type === 'Bot' && (i.body ?? '').includes(marker));
          if (mine) return { number: mine.number, url: mine.html_url };
        }
        const title = (await render({ template: 'gate/title', data: { destroy: req.kind === 'destroy', project: req.project } })).trim();
        const body = await renderBody(req, marker);
        await ensureLabel(octokit, repo, GATE_LABEL, LABEL_COLOR);
        const { data } = await octokit.issues.create({ owner: repo.owner, repo: repo.name, title, body, labels: [GATE_LABEL] });
        return { number: data.number, url: data.html_url };
      } catch (err) {
        rethrowClassified(err, `opening the ${req.kind} request of ${req.project}`);
      }
    },

    /** Closes a gate issue once its run is over (the result is commented first). */
    async closeGateIssue({ repo, number, completed }: { repo: RepoRef; number: number; completed: boolean }): Promise<void> {
      try {
        await client(repo).issues.update({ owner: repo.owner, repo: repo.name, issue_number: number, state: 'closed', state_reason: completed ? 'completed' : 'not_planned' });
      } catch (err) {
        rethrowClassified(err, `closing request #${number}`);
      }
    },
  };
}

export type GateIssueActivities = ReturnType<typeof createGateIssueActivities>;
