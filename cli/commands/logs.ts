// `terrapin logs`: a run's scrubbed terraform output — the whole file where this machine shares the worker's
// data dir, else the end the run recorded. `--follow` streams a running run's output as the worker writes it
// (its live log, on a shared disk) until the run ends; elsewhere it waits and prints the log at the end.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { liveLogFile, type RunKind } from '../../shared/runs.ts';
import type { RunLog } from '../../operator/records.ts';
import { withTemporal } from '../connection.ts';
import { collectKinds, projectOption, repoOption } from '../options.ts';
import { CliError, EXIT, notFound, outputOf, parseRepo, relativeTime, usageError, type Output } from '../output.ts';

/** Outcomes after which `--follow` exits 1: the run did not do what it was for. */
const FAILED = new Set(['failed', 'apply-failed', 'rollback-failed', 'unknown', 'stale', 'changed', 'terminated', 'timed-out', 'cancelled']);

interface LogsOptions {
  project?: string;
  repo?: string;
  last?: boolean;
  kind?: string[];
  follow?: boolean;
  interval: string;
}

export function register(program: Command): void {
  program
    .command('logs')
    .description("a run's terraform output (scrubbed), by run id or the latest of a project")
    .argument('[run-id]', 'a run id, as `terrapin history` lists them (run:owner/repo:project:kind:sha-n)')
    .addOption(projectOption('the latest run of this project (with --last)'))
    .addOption(repoOption('with -p: only runs of this repository'))
    .option('--last', "the project's latest run (implied by -p)")
    .option('-k, --kind <kind>', 'with --last: the latest run of these kinds (plan, apply, rollback, destroy, drift)', collectKinds)
    .option('-f, --follow', 'stream a running run\'s output until it ends; exit 1 if it failed')
    .option('--interval <seconds>', 'with --follow: how often to look', '1')
    .addHelpText(
      'after',
      `
The whole log is read from TERRAPIN_DATA_DIR when this machine shares the worker's disk; elsewhere the
last 16 KB the run recorded are shown, and a note on stderr says so. --follow streams the output of a
running run as terraform prints it where the disk is shared; elsewhere it waits and prints the log at the
end. With --json, --follow waits and prints one document.

Examples:
  $ terrapin logs run:acme/infra:app:apply:1a2b3c4-2
  $ terrapin logs -p app --last --kind apply
  $ terrapin logs -p app -r acme/infra --follow`,
    )
    .action(async (runId: string | undefined, opts: LogsOptions, command: Command) => {
      const out = outputOf(command);
      if (runId && opts.project) throw usageError('give a run id or -p <project> --last, not both');
      if (!runId && !opts.project) throw usageError('which run? give a run id, or -p <project> --last');
      if (runId && (opts.last || opts.kind)) throw usageError('--last and --kind pick a project\'s run: use them with -p, not with a run id');
      const interval = Number(opts.interval);
      if (!(interval > 0 && interval <= 60)) throw usageError(`--interval: expected seconds from 0.1 to 60, got "${opts.interval}"`);
      const repository = opts.repo ? parseRepo(opts.repo).fullName : undefined;
      const records = await import('../../operator/records.ts');
      records.runsQuery({ repository, project: opts.project, kinds: opts.kind as RunKind[] | undefined });
      const ended = await withTemporal(out, async (conn) => {
        let id = runId;
        if (!id) {
          const run = await records.lastRun(conn.client, { repository, project: opts.project, kinds: opts.kind as RunKind[] | undefined });
          if (!run) throw notFound(`no runs recorded for project ${opts.project}${repository ? ` in ${repository}` : ''}${opts.kind ? ` of kind ${opts.kind.join(', ')}` : ''}`);
          id = run.runId;
        }
        const streamed = opts.follow ? await follow(out, conn.client, out.json ? undefined : conn.dataDir, id, interval * 1000) : false;
        const log = await records.runLog(conn.client, conn.dataDir, id);
        // Streamed: the output is on the screen already; what the run came to is said on stderr.
        print(out, streamed ? { ...log, text: '' } : log);
        return log.run;
      });
      if (opts.follow && (FAILED.has(ended.outcome) || ended.status !== 'completed')) {
        throw new CliError(`${ended.runId} ended ${ended.outcome === ended.status ? ended.status : `${ended.outcome} (${ended.status})`}`, EXIT.failure);
      }
    });
}

/**
 * Polls the run until it closes. With the worker's data dir, its live log goes to stdout line by line as it
 * grows (the worker appends whole, scrubbed lines); else a spinner on a terminal says what it waits for.
 * Whether anything was streamed.
 */
async function follow(out: Output, client: Client, dataDir: string | undefined, runId: string, intervalMs: number): Promise<boolean> {
  const { getRun } = await import('../../operator/records.ts');
  const first = await getRun(client, runId);
  if (first.status !== 'running') return false;
  out.note(`${runId}: ${first.kind} of ${first.project} running since ${relativeTime(new Date(first.startedAt))}; waiting for it to end`);
  const running = async () => (await client.workflow.getHandle(runId).describe()).status.name === 'RUNNING';
  if (!dataDir) {
    await out.spin(`Waiting for ${runId}`, async () => {
      while (await running()) await new Promise((r) => setTimeout(r, intervalMs));
    });
    return false;
  }
  const live = tail(liveLogFile(dataDir, runId), out);
  while (await running()) {
    await live.copy();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await live.copy();
  return live.streamed();
}

/** Prints the whole lines a growing file gained since the last call. */
function tail(file: string, out: Output) {
  const decoder = new StringDecoder('utf8');
  let offset = 0;
  let partial = '';
  let streamed = false;
  return {
    streamed: () => streamed,
    async copy(): Promise<void> {
      const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
      if (!handle) return;
      try {
        const { size } = await handle.stat();
        if (size <= offset) return;
        const buf = Buffer.alloc(size - offset);
        const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        const text = partial + decoder.write(buf.subarray(0, bytesRead));
        const cut = text.lastIndexOf('\n');
        partial = text.slice(cut + 1);
        if (cut < 0) return;
        for (const line of text.slice(0, cut).split('\n')) out.line(line);
        streamed = true;
      } finally {
        await handle.close();
      }
    },
  };
}

function print(out: Output, log: RunLog): void {
  const r = log.run;
  if (out.json) {
    out.printJson({
      run: { runId: r.runId, repository: r.repository, project: r.project, kind: r.kind, trigger: r.trigger, pr: r.pr, actor: r.actor, approvers: r.approvers, revision: r.revision, outcome: r.outcome, status: r.status, startedAt: r.startedAt, closedAt: r.closedAt, counts: r.counts },
      source: log.source,
      file: log.file,
      note: log.note,
      text: log.text,
    });
    return;
  }
  // The log alone on stdout (to pipe or save); what it is, and whether it is whole, on stderr.
  const when = relativeTime(new Date(r.closedAt ?? r.startedAt));
  out.note(`${r.runId}: ${r.kind} of ${r.project} at ${r.revision?.slice(0, 7) ?? '?'}, ${r.outcome}, ${when}`);
  if (log.note) out.note(`note: ${log.note}`);
  if (log.text) out.line(log.text.replace(/\n$/, ''));
}
