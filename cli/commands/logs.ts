// `terrapin logs` (being written).
import type { Command } from 'commander';
import { CliError } from '../output.ts';

export function register(program: Command): void {
  program
    .command('logs')
    .description('logs of project runs')
    .action(() => {
      throw new CliError('logs: not implemented yet');
    });
}
