// `terrapin status` (being written).
import type { Command } from 'commander';
import { CliError } from '../output.ts';

export function register(program: Command): void {
  program
    .command('status')
    .description('status of project runs')
    .action(() => {
      throw new CliError('status: not implemented yet');
    });
}
