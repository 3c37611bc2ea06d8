// `terrapin run plan | apply | drift`: the project pipeline in this process against a local directory,
// with no Temporal and no GitHub (local/executor.ts). What needs Temporal is refused with the reason.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { LocalCommand, LocalEvent, LocalSummary, ProjectReport } from '../../local/executor.ts';
import { NEEDS_TEMPORAL } from '../../local/needs-temporal.ts';
import { CliError, EXIT, outputOf, usageError, type Output } from '../output.ts';

/** Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_CANCELLED = 130;

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

const DESCRIPTIONS: Record<LocalCommand, string> = {
  plan: 'plan every project (or -p ones) in dependency order, in this process',
  apply: 'plan and apply in dependency order, in this process (needs --auto-approve: no approval gate without Temporal)',
  drift: 'check every project (or -p ones) for drift, in this process',
};

const EXAMPLES: Record<LocalCommand, string> = {
  plan: `
Examples:
  $ cd examples/demo-infra && npx terrapin run plan
  $ terrapin run plan -p network -p database --dir ./infra
  $ terrapin run plan --json | jq '.projects[] | {name, status, changes}'`,
  apply: `
Examples:
  $ terrapin run apply --auto-approve
  $ terrapin run apply --auto-approve --base main      # a failed apply rolls the applied projects back to main
  $ terrapin run apply --auto-approve -p app --json`,
  drift: `
Examples:
  $ terrapin run drift
  $ terrapin run drift -p network --json`,
};

const LOCAL_HELP = `
Local runs need no Temporal and no GitHub: one process, nothing kept across restarts. Terrapin's files go
under <dir>/.terrapin/local/; terraform state stays wherever the projects' backends say.
Need Temporal (\`npm start\`): approval gates, schedules, resuming after a crash, run history.

Exit codes: 0 success, 1 a project failed (or a rollback ran), 2 usage error or refused, 3 no such project,
4 the sandbox (bubblewrap) does not work here, 130 cancelled (Ctrl-C: terraform stopped cleanly, its state
lock released).`;

export function register(program: Command): void {
  const run = program
    .command('run')
    .description('run projects locally in this process: no Temporal, no GitHub (plan, apply, drift)')
    .addHelpText('after', `${LOCAL_HELP}\n${EXAMPLES.plan}`);
  for (const kind of ['plan', 'apply', 'drift'] as const) {
    const command = run
      .command(kind)
      .description(DESCRIPTIONS[kind])
      .option('-p, --project <name>', 'only this project (repeat for more)', collect)
      .option('--dir <path>', 'the directory holding .terrapin.yml or the Terraform roots', '.')
      .option('--json', 'machine-readable summary on stdout (progress goes to stderr)')
      .option('--no-sandbox', 'run terraform and hooks unsandboxed: your own code on your own machine (where bubblewrap does not exist)')
      .option('--resume', 'refused: resuming needs Temporal');
    if (kind === 'apply') {
      command
        .option('--auto-approve', 'apply what the plan shows without an approval (there is no approval gate without Temporal)')
        .option('--base <ref>', 'git ref a failed apply rolls the applied projects back to (plan + apply of that revision)');
    }
    if (kind === 'drift') command.option('--schedule <cron>', 'refused: schedules need Temporal');
    command.addHelpText('after', `${EXAMPLES[kind]}\n${LOCAL_HELP}`);
    command.action(async (opts: RunOptions, cmd: Command) => {
      process.exitCode = await runCommand(kind, opts, outputOf(cmd));
    });
  }
}

interface RunOptions {
  project?: string[];
  dir: string;
  json?: boolean;
  resume?: boolean;
  sandbox: boolean;
  autoApprove?: boolean;
  base?: string;
  schedule?: string;
}

async function runCommand(kind: LocalCommand, opts: RunOptions, out: Output): Promise<number> {
  if (opts.resume) throw usageError(NEEDS_TEMPORAL.resume);
  if (opts.schedule !== undefined) throw usageError(NEEDS_TEMPORAL.schedule);
  if (kind === 'apply' && !opts.autoApprove) throw usageError(NEEDS_TEMPORAL.approval);
  // Loaded only for a run: terraform, git and Temporal's libraries cost the other commands' start-up a second.
  const [{ runLocal, LocalRefusal, LocalUnavailable }, { LocalConfigError }, { LocalUsageError }] = await Promise.all([
    import('../../local/executor.ts'),
    import('../../local/projects.ts'),
    import('../../local/tree.ts'),
  ]);
  const progress = out.json ? (line: string) => void process.stderr.write(`${line}\n`) : out.line;
  const cancel = new AbortController();
  const onSigint = () => {
    if (!cancel.signal.aborted) progress('Cancelling: stopping terraform and waiting for it to release its state lock…');
    cancel.abort('cancelled by Ctrl-C');
  };
  process.on('SIGINT', onSigint);
  let summary: LocalSummary;
  try {
    summary = await runLocal({
      dir: opts.dir,
      command: kind,
      projects: opts.project ?? [],
      ...(opts.base ? { base: opts.base } : {}),
      autoApprove: Boolean(opts.autoApprove),
      noSandbox: !opts.sandbox,
      signal: cancel.signal,
      onEvent: (event) => progress(progressLine(event, out)),
    });
  } catch (err) {
    if (err instanceof LocalRefusal || err instanceof LocalUsageError) throw usageError(err.message);
    if (err instanceof LocalUnavailable) throw new CliError(err.message, EXIT.unavailable);
    if (err instanceof LocalConfigError) throw new CliError(err.message, /^no project named/.test(err.message) ? EXIT.notFound : EXIT.failure);
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (out.json) out.printJson(summary);
  else await printSummary(summary, out);
  if (summary.cancelled) return EXIT_CANCELLED;
  return summary.ok ? EXIT.ok : EXIT.failure;
}

const VERB: Record<string, string> = { plan: 'planning', apply: 'applying', rollback: 'rolling back', drift: 'checking drift' };

function progressLine(event: LocalEvent, out: Output): string {
  const { color } = out;
  if (event.type === 'start') return color.dim(`  ${event.project}: ${VERB[event.kind] ?? event.kind}…`);
  const r = event.result;
  const summary = r.plan?.summary ?? r.drift?.plan.summary;
  const counts = summary ? ` ${changesText(summary)}` : '';
  const good = ['planned', 'no-changes', 'applied', 'clean', 'drifted', 'rolled-back'].includes(r.outcome);
  const mark = good ? color.green('✓') : color.red('✗');
  return `${mark} ${event.project}: ${r.outcome}${counts} ${color.dim(`(${seconds(event.ms)})`)}`;
}

const changesText = (c: { add: number; change: number; destroy: number }) => `+${c.add} ~${c.change} -${c.destroy}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

async function printSummary(summary: LocalSummary, out: Output): Promise<void> {
  const { color } = out;
  // The plan itself, as terraform prints it, for each project that would change something.
  if (summary.command === 'plan') {
    for (const p of summary.projects.filter((x) => x.status === 'planned' && x.logFile)) {
      out.line();
      out.line(color.bold(`── ${p.name} (${p.dir}) ──`));
      out.line((await readFile(p.logFile!, 'utf8').catch(() => '(plan text not found)\n')).trimEnd());
    }
  }
  for (const p of summary.projects.filter((x) => x.error || (isFailure(x) && x.logFile))) {
    out.line();
    out.line(color.red(`── ${p.name}: ${p.status} ──`));
    if (p.error) out.line(p.error);
    if (p.logFile) out.line(await tail(p.logFile, 20));
    if (p.logFile) out.line(color.dim(`(full output: ${p.logFile})`));
  }
  out.line();
  out.table(
    ['PROJECT', 'DIR', 'RESULT', 'CHANGES', 'TIME'],
    summary.projects.map((p) => [p.name, p.dir, statusText(p, out), p.changes ? changesText(p.changes) : '', p.durationMs === undefined ? '' : seconds(p.durationMs)]),
  );
  const counts = new Map<string, number>();
  for (const p of summary.projects) counts.set(p.status, (counts.get(p.status) ?? 0) + 1);
  const parts = [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
  const verdict = summary.cancelled ? color.yellow('cancelled') : summary.ok ? color.green('ok') : color.red('failed');
  out.line(`${summary.command} ${verdict}: ${summary.projects.length} project${summary.projects.length === 1 ? '' : 's'} (${parts}) in ${seconds(summary.durationMs)}`);
}

const isFailure = (p: ProjectReport) => ['failed', 'apply-failed', 'stale', 'unknown', 'changed'].includes(p.status);

function statusText(p: ProjectReport, out: Output): string {
  const { color } = out;
  let text = isFailure(p) ? color.red(p.status) : p.status === 'skipped' || p.status === 'cancelled' || p.status === 'not-applied' ? color.yellow(p.status) : color.green(p.status);
  if (p.skippedBecause) text += ` (${p.skippedBecause} failed)`;
  if (p.rollback) text += `, ${p.rollback.status === 'rolled-back' ? color.yellow(`rolled back to ${p.rollback.baseRef}`) : color.red(`rollback to ${p.rollback.baseRef} failed`)}`;
  return text;
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
