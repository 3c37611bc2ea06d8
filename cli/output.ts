// How the CLI speaks: aligned tables and relative times for people, JSON for scripts, colour and a spinner
// only when stdout is a terminal, and one line on stderr (never a stack trace) when something goes wrong.
import Table from 'cli-table3';
import pc from 'picocolors';
import yoctoSpinner from 'yocto-spinner';

/** The documented exit codes (README "CLI", `terrapin --help`). */
export const EXIT = {
  ok: 0,
  /** The command could not do its job, or the run it followed failed. */
  failure: 1,
  /** Bad arguments or options. */
  usage: 2,
  /** No such repository, project or run. */
  notFound: 3,
  /** Temporal unreachable, or credentials missing for what the command must reach. */
  unavailable: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the user can act on: its message is printed as is, and the process exits with its code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode = EXIT.failure) {
    super(message);
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);
export const notFound = (message: string) => new CliError(message, EXIT.notFound);
export const unavailable = (message: string) => new CliError(message, EXIT.unavailable);

type Colorize = (text: string) => string;

export interface Output {
  json: boolean;
  /** Colour and spinner allowed: stdout is a terminal and output is not JSON. */
  rich: boolean;
  color: { bold: Colorize; dim: Colorize; green: Colorize; yellow: Colorize; red: Colorize; cyan: Colorize };
  line(text?: string): void;
  /** A line on stderr: what the output is, not the output itself (so stdout stays clean to pipe). */
  note(text: string): void;
  printJson(value: unknown): void;
  table(head: string[], rows: string[][]): void;
  /** Runs `work` under a spinner on a terminal; silently elsewhere. */
  spin<T>(text: string, work: () => Promise<T>): Promise<T>;
}

export interface OutputOptions {
  json?: boolean;
  stdout?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  stderr?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  env?: Record<string, string | undefined>;
}

export function createOutput(opts: OutputOptions = {}): Output {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const env = opts.env ?? process.env;
  const json = Boolean(opts.json);
  const rich = !json && Boolean(stdout.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb';
  const colors = pc.createColors(rich);
  return {
    json,
    rich,
    color: { bold: colors.bold, dim: colors.dim, green: colors.green, yellow: colors.yellow, red: colors.red, cyan: colors.cyan },
    line: (text = '') => void stdout.write(`${text}\n`),
    note: (text) => void stderr.write(`${text}\n`),
    printJson: (value) => void stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    table: (head, rows) => void stdout.write(`${renderTable(head, rows, rich)}\n`),
    async spin(text, work) {
      if (!rich || !stderr.isTTY) return work();
      const spinner = yoctoSpinner({ text, stream: stderr as NodeJS.WriteStream }).start();
      try {
        return await work();
      } finally {
        spinner.stop();
      }
    },
  };
}

/** Borderless, aligned columns (like `gh` and `kubectl`); no ANSI escapes off a terminal. */
export function renderTable(head: string[], rows: string[][], rich = false): string {
  const table = new Table({
    head: rich ? head.map((h) => pc.bold(h)) : head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '',
      right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  table.push(...rows);
  return table
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

export { relativeTime } from '../operator/time.ts';

const DURATION_UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `--since`: a duration back from now ("30d", "12h", "45m", "2w") or an ISO date. */
export function parseSince(value: string, now: Date = new Date()): Date {
  const match = /^([1-9][0-9]*)(m|h|d|w)$/.exec(value.trim());
  if (match) return new Date(now.getTime() - Number(match[1]) * DURATION_UNITS[match[2]]);
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw usageError(`--since: expected a duration like 30d, 12h, 45m, 2w or a date like 2026-01-31, got "${value}"`);
}

/** `--limit`: a positive integer. */
export function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw usageError(`--limit: expected a whole number from 1 to 100000, got "${value}"`);
  return n;
}

/** `-r owner/repo`. */
export function parseRepo(value: string): { owner: string; name: string; fullName: string } {
  const match = /^([A-Za-z0-9][A-Za-z0-9-]{0,38})\/([A-Za-z0-9._-]{1,100})$/.exec(value.trim());
  if (!match) throw usageError(`--repo: expected owner/repo, got "${value}"`);
  return { owner: match[1], name: match[2], fullName: `${match[1]}/${match[2]}` };
}

/** One line for stderr: the message of a CliError as is, anything else prefixed so it is not mistaken for output. */
export function errorLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const first = message.split('\n').find((l) => l.trim()) ?? 'unknown error';
  return `terrapin: ${first.trim()}`;
}

/** The output a command's action writes to, from the global `--json`. */
export function outputOf(command: { optsWithGlobals(): Record<string, unknown> }): Output {
  return createOutput({ json: Boolean(command.optsWithGlobals().json) });
}
