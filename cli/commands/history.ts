// `terrapin history` (being written).
import type { Command } from 'commander';
import { CliError } from '../output.ts';

export function register(program: Command): void {
  program
    .command('history')
    .description('history of project runs')
    .action(() => {
      throw new CliError('history: not implemented yet');
    });
}
