// `terrapin status`: where each project of a repository stands — last apply or deploy, plans waiting for
// approval, lock, deploy queue, drift.
import type { Command } from 'commander';
import type { ProjectStatus, RepositoryStatus } from '../../operator/status.ts';
import { withTemporal } from '../connection.ts';
import { projectOption, repoOption, resolveRepo } from '../options.ts';
import { outputOf, relativeTime, type Output } from '../output.ts';
import { colourOutcome } from './history.ts';

export function register(program: Command): void {
  program
    .command('status')
    .description('per project: last apply or deploy, pending plans, lock holder, deploy queue, drift')
    .addOption(repoOption())
    .addOption(projectOption('only this project (default: every project with recorded runs)'))
    .addHelpText(
      'after',
      `
The open drift issue is read from GitHub with the App's credentials (APP_ID and PRIVATE_KEY or
PRIVATE_KEY_PATH, GHE_HOST for GitHub Enterprise); without them it shows as unknown.

Examples:
  $ terrapin status -r acme/infra
  $ terrapin status -r acme/infra -p network
  $ terrapin status --json | jq -r '.projects[] | "\\(.project): \\(.summary)"'`,
    )
    .action(async (opts: { repo?: string; project?: string }, command: Command) => {
      const out = outputOf(command);
      const repo = resolveRepo(opts.repo);
      const [{ repositoryStatus }, { githubCredentials, githubWebUrl }] = await Promise.all([import('../../operator/status.ts'), import('../../operator/connect.ts')]);
      const creds = githubCredentials();
      const driftIssues = creds ? async (repository: string) => (await import('../../operator/github.ts')).openDriftIssues(creds, repository) : undefined;
      const status = await withTemporal(out, (conn) =>
        out.spin(`Reading ${repo.fullName}`, () =>
          repositoryStatus(conn.client, { repository: repo.fullName, project: opts.project, webUrl: githubWebUrl(), driftIssues }),
        ),
      );
      if (out.json) return out.printJson(status);
      printStatus(out, status);
    });
}

export function printStatus(out: Output, status: RepositoryStatus, now = new Date()): void {
  out.line(out.color.bold(status.repository));
  for (const p of status.projects) {
    out.line();
    printProject(out, p, now);
  }
  for (const l of status.otherLocks) {
    out.line();
    out.line(`${out.color.yellow('lock')} ${l.lockId}: ${lockText(l)}`);
  }
  const warnings = [...new Set(status.projects.flatMap((p) => p.warnings))];
  for (const w of warnings) out.line(out.color.yellow(`warning: ${w}`));
}

function printProject(out: Output, p: ProjectStatus, now: Date): void {
  out.line(`${out.color.bold(p.project)}  ${p.summary}`);
  const rows: string[][] = [];
  const a = p.lastApply;
  rows.push([
    'last apply',
    a
      ? `${relativeTime(new Date(a.closedAt ?? a.startedAt), now)}: ${a.kind} of ${a.revision?.slice(0, 7) ?? '?'}` +
        `${a.trigger ? ` (${a.trigger}${a.pr ? ` #${a.pr}` : ''})` : ''}${a.actor ? ` by ${a.actor}` : ''}` +
        `${a.approvers.length ? `, approved by ${a.approvers.join(', ')}` : ''}: ${colourOutcome(out, a.outcome)}  ${out.color.dim(a.runId)}`
      : 'never',
  ]);
  if (p.pendingPlans.length === 0) rows.push(['pending', 'none']);
  for (const [i, plan] of p.pendingPlans.entries()) {
    rows.push([
      i === 0 ? 'pending' : '',
      `#${plan.pr} ${plan.url}  ${plan.summary} at ${plan.revision.slice(0, 7)}${plan.approvals.length ? `, approved by ${plan.approvals.join(', ')}` : ', waiting for approval'}`,
    ]);
  }
  rows.push(['lock', p.lock ? lockText(p.lock) : 'free']);
  const d = p.deployQueue;
  rows.push([
    'deploy queue',
    d
      ? [
          d.current ? `deploying ${d.current.revision.slice(0, 7)} (${d.current.phase})` : 'idle',
          d.queued.length ? `${d.queued.length} queued (${d.queued.map((s) => s.slice(0, 7)).join(', ')})` : '',
          d.deployed ? `deployed ${d.deployed.slice(0, 7)}` : '',
        ]
          .filter(Boolean)
          .join(', ')
      : 'none',
  ]);
  const c = p.drift.lastCheck;
  const issue = p.drift.issue;
  rows.push([
    'drift',
    `${c ? `checked ${relativeTime(new Date(c.closedAt ?? c.startedAt), now)}: ${colourOutcome(out, c.outcome)}` : 'never checked'}; issue: ` +
      (issue === 'unknown' ? 'unknown (no GitHub credentials)' : issue ? `#${issue.number} ${issue.url}` : 'none open'),
  ]);
  out.table([], rows.map(([k, v]) => [`  ${k}`, v!]));
}

function lockText(l: NonNullable<ProjectStatus['lock']>): string {
  const held = l.holder ? `held by #${l.holder.pr} ${l.holder.url}` : 'free';
  return l.waiting.length ? `${held}; waiting: ${l.waiting.map((w) => `#${w.pr}`).join(', ')}` : held;
}
