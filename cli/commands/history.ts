// `terrapin history`: a project's runs, newest first, from the run records in Temporal visibility.
import type { Command } from 'commander';
import type { RunKind } from '../../shared/runs.ts';
import type { RunSummary } from '../../operator/records.ts';
import { withTemporal } from '../connection.ts';
import { collectKinds, projectOption, repoOption } from '../options.ts';
import { outputOf, parseLimit, parseRepo, parseSince, relativeTime, type Output } from '../output.ts';

export interface HistoryJson {
  repository: string | null;
  project: string | null;
  runs: RunSummary[];
  /** More runs match than --limit showed. */
  more: boolean;
}

export function register(program: Command): void {
  program
    .command('history')
    .description("a project's runs, newest first: time, kind, trigger, PR, actor, approvers, revision, outcome, +/~/-")
    .addOption(projectOption())
    .addOption(repoOption('only this repository (default: every repository)'))
    .option('-k, --kind <kind>', 'only these kinds: plan, apply, rollback, destroy, drift (comma-separated or repeated)', collectKinds)
    .option('--since <when>', 'only runs started since: a duration (30d, 12h, 45m, 2w) or a date (2026-01-31)')
    .option('-n, --limit <n>', 'show at most this many runs', '20')
    .addHelpText(
      'after',
      `
Runs are listed newest first (running ones on top); run ids go to \`terrapin logs <run-id>\`.

Examples:
  $ terrapin history -p network
  $ terrapin history -p app -r acme/infra --kind apply,destroy --since 30d
  $ terrapin history -r acme/infra --limit 100 --json | jq '.runs[] | select(.outcome == "apply-failed")'`,
    )
    .action(async (opts: { project?: string; repo?: string; kind?: string[]; since?: string; limit: string }, command: Command) => {
      const out = outputOf(command);
      const limit = parseLimit(opts.limit);
      const filter = {
        repository: opts.repo ? parseRepo(opts.repo).fullName : undefined,
        project: opts.project,
        kinds: opts.kind as RunKind[] | undefined,
        since: opts.since ? parseSince(opts.since) : undefined,
      };
      const { listRuns, runsQuery } = await import('../../operator/records.ts');
      runsQuery(filter); // a bad value is a usage error before anything connects
      const found = await withTemporal(out, (conn) => out.spin('Reading run records', () => listRuns(conn.client, filter, limit + 1)));
      const json: HistoryJson = { repository: filter.repository ?? null, project: filter.project ?? null, runs: found.slice(0, limit), more: found.length > limit };
      if (out.json) return out.printJson(json);
      printHistory(out, json, { showRepo: !filter.repository, showProject: !filter.project });
    });
}

export function printHistory(out: Output, h: HistoryJson, show: { showRepo: boolean; showProject: boolean }, now = new Date()): void {
  if (h.runs.length === 0) {
    out.line('No runs recorded' + (h.project ? ` for ${h.project}` : '') + (h.repository ? ` in ${h.repository}` : '') + '.');
    return;
  }
  const head = ['WHEN', ...(show.showRepo ? ['REPOSITORY'] : []), ...(show.showProject ? ['PROJECT'] : []), 'KIND', 'TRIGGER', 'PR', 'ACTOR', 'APPROVED BY', 'REVISION', 'OUTCOME', '+/~/-', 'RUN'];
  const rows = h.runs.map((r) => [
    relativeTime(new Date(r.startedAt), now),
    ...(show.showRepo ? [r.repository ?? '-'] : []),
    ...(show.showProject ? [r.project ?? '-'] : []),
    r.kind ?? '-',
    r.trigger ?? '-',
    r.pr ? `#${r.pr}` : '-',
    r.actor ?? '-',
    r.approvers.length ? r.approvers.join(', ') : '-',
    r.revision ? r.revision.slice(0, 7) : '-',
    colourOutcome(out, r.outcome),
    r.counts ? `+${r.counts.add} ~${r.counts.change} -${r.counts.destroy}` : '-',
    r.runId,
  ]);
  out.table(head, rows);
  if (h.more) out.line(out.color.dim(`(the ${h.runs.length} newest; --limit shows more)`));
}

const GOOD = new Set(['applied', 'planned', 'no-changes', 'clean', 'rolled-back', 'destroyed', 'completed']);
const BAD = new Set(['failed', 'apply-failed', 'rollback-failed', 'unknown', 'stale', 'terminated', 'timed-out', 'cancelled']);

export function colourOutcome(out: Output, outcome: string): string {
  if (GOOD.has(outcome)) return out.color.green(outcome);
  if (BAD.has(outcome)) return out.color.red(outcome);
  return out.color.yellow(outcome);
}
