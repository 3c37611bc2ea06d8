// The `terrapin` command line: one commander program, every command registered from cli/commands/index.ts.
// bin/terrapin.mjs calls main() after checking the Node version; tests call it in-process too.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands/index.ts';
import { CliError, EXIT, errorLine, type ExitCode } from './output.ts';
import { BadInputError, NotFoundError, UnavailableError } from '../operator/errors.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  failure: the command could not do its job, or the run it followed failed
  2  usage error: unknown command, option or bad value
  3  not found: no such repository, project or run
  4  unavailable: Temporal unreachable, or credentials missing for GitHub

Environment (the server's own settings):
  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_CERT/KEY/CA, TEMPORAL_API_KEY
      unset TEMPORAL_ADDRESS: the embedded server Terrapin started (\`npm start\`) on 127.0.0.1:7233
      (TERRAPIN_EMBEDDED_TEMPORAL_PORT)
  TERRAPIN_DATA_DIR   where runs keep their logs (default .terrapin)
  APP_ID, PRIVATE_KEY or PRIVATE_KEY_PATH, GHE_HOST   GitHub App, only where a command reads GitHub`;

export function buildProgram(): Command {
  const program = new Command('terrapin')
    .description('Terrapin, the GitOps bot for Terraform: status, history and logs of project runs')
    .version(VERSION, '-V, --version')
    .option('--json', 'machine-readable output (JSON on stdout)')
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .configureOutput({
      // Commander's own usage errors: one line, like every other error of the CLI.
      outputError: (text, write) => write(`terrapin: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .addHelpText(
      'after',
      `
Examples:
  $ terrapin status -r acme/infra
  $ terrapin history -p network --since 7d
  $ terrapin logs -p network --last --kind apply
${EXIT_CODES_HELP}`,
    );
  for (const command of COMMANDS) command.register(program);
  // Every command's help ends with the exit codes, whoever wrote the command.
  for (const command of program.commands) {
    command.addHelpText('after', '\nExit codes: 0 success, 1 failure, 2 usage error, 3 not found, 4 Temporal unreachable or no credentials.');
  }
  return program;
}

/** Runs the CLI; resolves to the exit code (never throws, never prints a stack trace unless TERRAPIN_DEBUG is set). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (process.env.TERRAPIN_DEBUG) console.error(err);
    process.stderr.write(`${errorLine(err)}\n`);
    return exitCodeOf(err);
  }
}

/** The documented exit code for an error from a command or the operator library. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof BadInputError) return EXIT.usage;
  if (err instanceof NotFoundError) return EXIT.notFound;
  if (err instanceof UnavailableError || lostConnection(err)) return EXIT.unavailable;
  return EXIT.failure;
}

/** gRPC UNAVAILABLE (14) or DEADLINE_EXCEEDED (4) from Temporal: the server went away mid-command. */
function lostConnection(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e && typeof e === 'object'; e = e.cause as typeof e) {
    if (e.code === 14 || e.code === 4) return true;
  }
  return false;
}
